using System.Text;
using System.Text.Unicode;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Reads <c>head, relation, tail[, weight]</c> triples, one per line: TSV (tab-separated, no
/// quoting, the layout of the usual knowledge-graph splits) or CSV (comma-separated, RFC 4180
/// quoting with <c>""</c> for a quote; a record may not span lines). Fields are taken as they are,
/// spaces included; an empty weight (a trailing separator, as spreadsheets export) is none. Blank
/// lines are skipped; a first line that reads <c>head, relation, tail</c> (then optionally
/// <c>weight</c> or an empty field) is a header and skipped.
/// </summary>
/// <remarks>Splitting is done here rather than by a CSV library because each line is first checked
/// as UTF-8 on its own (see <see cref="Utf8LineReader"/>), so a bad byte costs one line, not the file.</remarks>
internal sealed class TripleReader(string source, byte separator)
{
    /// <summary>Facts' bytes are copied into chunks of this size, so that a fact costs no array of its
    /// own; a chunk lives as long as the facts in it (small enough to stay off the large-object heap).</summary>
    private const int ChunkBytes = 64 * 1024;

    private readonly List<string> _fields = new(4);
    private byte[] _chunk = [];
    private int _chunkUsed;

    public static IEnumerable<IngestItem> Read(Stream stream, string source, char separator)
    {
        var reader = new TripleReader(source, (byte)separator);
        var lines = new Utf8LineReader(stream);
        while (lines.TryRead(out ReadOnlyMemory<byte> bytes, out bool tooLong))
        {
            long line = lines.LineNumber;
            if (tooLong)
            {
                yield return new RejectedItem(source, line, Utf8LineReader.TooLong);
                continue;
            }

            if (!bytes.IsEmpty && reader.Parse(bytes.Span, line) is IngestItem item)
            {
                yield return item;
            }
        }
    }

    /// <summary>The item a non-empty line holds; null for the header.</summary>
    /// <remarks>A line is split as bytes: a separator byte never occurs inside a multi-byte UTF-8
    /// sequence, so this splits where splitting the decoded text would. A CSV line with a quote
    /// takes the text path, which unquotes.</remarks>
    private IngestItem? Parse(ReadOnlySpan<byte> text, long line)
    {
        if (!Utf8.IsValid(text))
        {
            Utf8LineReader.Decode(text, out string? badUtf8);
            return new RejectedItem(source, line, badUtf8!);
        }

        if (separator == (byte)',' && text.Contains((byte)'"'))
        {
            return ParseQuoted(Encoding.UTF8.GetString(text), line);
        }

        int count = text.Count(separator) + 1;
        if (line == 1 && IsHeader(text, count))
        {
            return null;
        }

        if (count is < 3 or > 4)
        {
            return FieldCount(line, count);
        }

        int headEnd = text.IndexOf(separator);
        int relationEnd = headEnd + 1 + text[(headEnd + 1)..].IndexOf(separator);
        int tailEnd = count == 3 ? text.Length : relationEnd + 1 + text[(relationEnd + 1)..].IndexOf(separator);
        string? error = ItemChecks.Name(headEnd, "head")
            ?? ItemChecks.Name(relationEnd - headEnd - 1, "relation")
            ?? ItemChecks.Name(tailEnd - relationEnd - 1, "tail");
        float? weight = null;
        if (error is null && count == 4 && tailEnd + 1 < text.Length)
        {
            error = ItemChecks.Weight(text[(tailEnd + 1)..], out float parsed);
            weight = parsed;
        }

        return error is null
            ? new FactItem(source, line, Keep(text[..tailEnd]), headEnd, relationEnd, weight)
            : new RejectedItem(source, line, error);
    }

    /// <summary>Whether a first line is the header: head, relation, tail, then weight or, as a
    /// spreadsheet exports it with a trailing separator, nothing.</summary>
    private bool IsHeader(ReadOnlySpan<byte> text, int count)
    {
        ReadOnlySpan<byte> names = separator == (byte)',' ? "head,relation,tail"u8 : "head\trelation\ttail"u8;
        if (count == 3)
        {
            return text.SequenceEqual(names);
        }

        // Past three fields, the text goes on after the names' last one.
        if (!text.StartsWith(names) || text[names.Length] != separator)
        {
            return false;
        }

        ReadOnlySpan<byte> last = text[(names.Length + 1)..];
        return last.IsEmpty || last.SequenceEqual("weight"u8);
    }

    /// <summary>A copy of <paramref name="bytes"/> that outlives the line reader's buffer.</summary>
    private ReadOnlyMemory<byte> Keep(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _chunk.Length - _chunkUsed)
        {
            _chunk = new byte[Math.Max(ChunkBytes, bytes.Length)];
            _chunkUsed = 0;
        }

        bytes.CopyTo(_chunk.AsSpan(_chunkUsed));
        var kept = new ReadOnlyMemory<byte>(_chunk, _chunkUsed, bytes.Length);
        _chunkUsed += bytes.Length;
        return kept;
    }

    private RejectedItem FieldCount(long line, int count) =>
        new(source, line, $"expected head, relation, tail[, weight]; found {count} field{(count == 1 ? "" : "s")}");

    /// <summary>A CSV line with quotes, split and unquoted as text.</summary>
    private IngestItem? ParseQuoted(string text, long line)
    {
        string? error = SplitCsv(text, _fields);
        if (error is not null)
        {
            return new RejectedItem(source, line, error);
        }

        if (line == 1 && IsHeader(_fields))
        {
            return null;
        }

        if (_fields.Count is < 3 or > 4)
        {
            return FieldCount(line, _fields.Count);
        }

        error = ItemChecks.Name(_fields[0], "head") ?? ItemChecks.Name(_fields[1], "relation") ?? ItemChecks.Name(_fields[2], "tail");
        var fact = new FactInput { Head = _fields[0], Relation = _fields[1], Tail = _fields[2] };
        if (error is null && _fields.Count == 4 && _fields[3].Length > 0)
        {
            error = ItemChecks.Weight(_fields[3], out float weight);
            fact.Weight = weight;
        }

        return error is null ? new FactItem(source, line, fact) : new RejectedItem(source, line, error);
    }

    private static bool IsHeader(List<string> fields) =>
        fields.Count is 3 or 4 && fields[0] == "head" && fields[1] == "relation" && fields[2] == "tail" && (fields.Count == 3 || fields[3] is "weight" or "");

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
