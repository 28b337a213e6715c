using System.Text;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Reads <c>head, relation, tail[, weight]</c> triples, one per line: TSV (tab-separated, no
/// quoting, the layout of the usual knowledge-graph splits) or CSV (comma-separated, RFC 4180
/// quoting with <c>""</c> for a quote; a record may not span lines). Fields are taken as they are,
/// spaces included. Blank lines are skipped; a first line that reads <c>head, relation, tail</c>
/// (optionally <c>, weight</c>) is a header and skipped.
/// </summary>
/// <remarks>Splitting is done here rather than by a CSV library because each line is first decoded
/// on its own (see <see cref="Utf8LineReader"/>), so a bad byte costs one line, not the file.</remarks>
internal static class TripleReader
{
    public static IEnumerable<IngestItem> Read(Stream stream, string source, char separator)
    {
        var lines = new Utf8LineReader(stream);
        var fields = new List<string>(4);
        while (lines.TryReadText(out string? text, out string? unreadable))
        {
            long line = lines.LineNumber;
            if (text is null)
            {
                yield return new RejectedItem(source, line, unreadable!);
                continue;
            }

            if (text.Length == 0)
            {
                continue;
            }

            string? error = separator == ',' ? SplitCsv(text, fields) : SplitTsv(text, fields);
            if (error is null && line == 1 && IsHeader(fields))
            {
                continue;
            }

            yield return error is null ? ToFact(source, line, fields) : new RejectedItem(source, line, error);
        }
    }

    private static IngestItem ToFact(string source, long line, List<string> fields)
    {
        if (fields.Count is < 3 or > 4)
        {
            return new RejectedItem(source, line, $"expected head, relation, tail[, weight]; found {fields.Count} field{(fields.Count == 1 ? "" : "s")}");
        }

        string? error = ItemChecks.Name(fields[0], "head") ?? ItemChecks.Name(fields[1], "relation") ?? ItemChecks.Name(fields[2], "tail");
        var fact = new FactInput { Head = fields[0], Relation = fields[1], Tail = fields[2] };
        if (error is null && fields.Count == 4)
        {
            error = ItemChecks.Weight(fields[3], out float weight);
            fact.Weight = weight;
        }

        return error is null ? new FactItem(source, line, fact) : new RejectedItem(source, line, error);
    }

    private static bool IsHeader(List<string> fields) =>
        fields.Count is 3 or 4 && fields[0] == "head" && fields[1] == "relation" && fields[2] == "tail" && (fields.Count == 3 || fields[3] == "weight");

    private static string? SplitTsv(string text, List<string> fields)
    {
        fields.Clear();
        fields.AddRange(text.Split('\t'));
        return null;
    }

    private static string? SplitCsv(string text, List<string> fields)
    {
        fields.Clear();
        var field = new StringBuilder();
        int i = 0;
        while (true)
        {
            field.Clear();
            if (i < text.Length && text[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= text.Length)
                    {
                        return "unterminated quoted field";
                    }

                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            field.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    field.Append(text[i++]);
                }

                if (i < text.Length && text[i] != ',')
                {
                    return $"unexpected '{text[i]}' after a quoted field at column {i + 1}";
                }
            }
            else
            {
                int comma = text.IndexOf(',', i);
                int end = comma < 0 ? text.Length : comma;
                if (text.AsSpan(i, end - i).Contains('"'))
                {
                    return $"a quote inside an unquoted field at column {i + 1 + text.AsSpan(i, end - i).IndexOf('"')}";
                }

                field.Append(text, i, end - i);
                i = end;
            }

            fields.Add(field.ToString());
            if (i >= text.Length)
            {
                return null;
            }

            i++; // the comma
        }
    }
}
