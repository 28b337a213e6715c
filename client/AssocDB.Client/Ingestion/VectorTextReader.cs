using System.Globalization;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Reads concept vectors as text: per line a name, then its components, separated by spaces or
/// tabs (the word2vec / GloVe text layout; names therefore contain no whitespace). A first line of
/// exactly two integers is the word2vec header (count, dimension) and is skipped after its
/// dimension is checked. Blank lines are skipped.
/// </summary>
internal static class VectorTextReader
{
    private static readonly char[] Separators = [' ', '\t'];

    public static IEnumerable<IngestItem> Read(Stream stream, string source, IngestReadOptions options)
    {
        var lines = new Utf8LineReader(stream);
        int? dimension = options.Dimension;
        while (lines.TryReadText(out string? text, out string? unreadable))
        {
            long line = lines.LineNumber;
            if (text is null)
            {
                yield return new RejectedItem(source, line, unreadable!);
                continue;
            }

            string[] tokens = text.Split(Separators, StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0)
            {
                continue;
            }

            if (line == 1 && tokens.Length == 2 && long.TryParse(tokens[0], CultureInfo.InvariantCulture, out _)
                && int.TryParse(tokens[1], CultureInfo.InvariantCulture, out int headerDimension))
            {
                if (dimension is int expected && expected != headerDimension)
                {
                    yield return new RejectedItem(source, line, $"the header declares dimension {headerDimension}; expected {expected}");
                }

                dimension ??= headerDimension;
                continue;
            }

            yield return ToConcept(source, line, tokens, ref dimension, options.Cosine);
        }
    }

    private static IngestItem ToConcept(string source, long line, string[] tokens, ref int? dimension, bool cosine)
    {
        if (ItemChecks.Name(tokens[0], "name") is { } badName)
        {
            return new RejectedItem(source, line, badName);
        }

        if (tokens.Length == 1)
        {
            return new RejectedItem(source, line, "vector is missing");
        }

        var values = new float[tokens.Length - 1];
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.TryParse(tokens[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
            {
                return new RejectedItem(source, line, $"vector[{i}] '{ItemChecks.Shorten(tokens[i + 1])}' is not a number");
            }
        }

        return ItemChecks.Vector(values, ref dimension, "vector", cosine) is { } badVector
            ? new RejectedItem(source, line, badVector)
            : new ConceptItem(source, line, new ConceptInput { Name = tokens[0], Vector = Vectors.Of(values) });
    }
}
