using System.Globalization;
using System.Text;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Reads N-Triples (RDF 1.1): <c>&lt;s&gt; &lt;p&gt; &lt;o&gt; .</c> per line. Mapping: an IRI's text
/// (between the angle brackets, escapes resolved) is the concept or relation name; a blank node
/// keeps its label with the prefix (<c>_:b1</c>); a literal object becomes the concept named by its
/// lexical form, and the fact's payload records that it was a literal: <c>object</c> =
/// <c>literal</c>, plus <c>datatype</c> (the datatype IRI) or <c>language</c> (the tag) when
/// written. Lexical forms longer than the 1 KiB name limit are rejected like any long name.
/// Comments (<c>#</c>) and blank lines are skipped.
/// </summary>
internal static class NTriplesReader
{
    public static IEnumerable<IngestItem> Read(Stream stream, string source)
    {
        var lines = new Utf8LineReader(stream);
        while (lines.TryReadText(out string? text, out string? unreadable))
        {
            long line = lines.LineNumber;
            if (text is null)
            {
                yield return new RejectedItem(source, line, unreadable!);
                continue;
            }

            if (ParseLine(text, source, line) is { } item)
            {
                yield return item;
            }
        }
    }

    /// <summary>The line's fact or rejection; null for a blank or comment line.</summary>
    private static IngestItem? ParseLine(string text, string source, long line)
    {
        var parser = new Parser(text);
        parser.SkipSpace();
        if (parser.AtEnd || parser.Peek == '#')
        {
            return null;
        }

        try
        {
            return parser.Triple(source, line);
        }
        catch (FormatException e)
        {
            return new RejectedItem(source, line, e.Message);
        }
    }

    /// <summary>A cursor over one line; syntax errors throw <see cref="FormatException"/> with the column.</summary>
    private ref struct Parser(string text)
    {
        private int _at;

        public readonly bool AtEnd => _at >= text.Length;

        public readonly char Peek => text[_at];

        public void SkipSpace()
        {
            while (_at < text.Length && text[_at] is ' ' or '\t')
            {
                _at++;
            }
        }

        public IngestItem Triple(string source, long line)
        {
            string subject = Peek == '<' ? Iri("subject") : Blank("subject");
            SkipSpace();
            string predicate = Iri("predicate");
            SkipSpace();
            var fact = new FactInput { Head = subject, Relation = predicate };
            if (AtEnd)
            {
                throw Fail("object is missing");
            }

            if (Peek == '"')
            {
                fact.Tail = Literal(fact.Payload);
            }
            else
            {
                fact.Tail = Peek == '<' ? Iri("object") : Blank("object");
            }

            SkipSpace();
            if (AtEnd || Peek != '.')
            {
                throw Fail("expected '.' after the object");
            }

            _at++;
            SkipSpace();
            if (!AtEnd && Peek != '#')
            {
                throw Fail("unexpected text after '.'");
            }

            string? error = ItemChecks.Name(fact.Head, "subject") ?? ItemChecks.Name(fact.Relation, "predicate") ?? ItemChecks.Name(fact.Tail, "object")
                ?? ItemChecks.MapSize(fact.Payload.Sum(entry => (long)Encoding.UTF8.GetByteCount(entry.Key) + Encoding.UTF8.GetByteCount(entry.Value)), "the literal's datatype or language");
            return error is null ? new FactItem(source, line, fact) : new RejectedItem(source, line, error);
        }

        private string Iri(string role)
        {
            if (AtEnd || Peek != '<')
            {
                throw Fail($"{role} must be an IRI <...>");
            }

            _at++;
            var iri = new StringBuilder();
            while (true)
            {
                if (AtEnd)
                {
                    throw Fail($"{role} IRI is not closed with '>'");
                }

                char c = text[_at];
                if (c == '>')
                {
                    _at++;
                    return iri.ToString();
                }

                if (c == '\\')
                {
                    iri.Append(Escape(allowCharacterEscapes: false));
                    continue;
                }

                if (c <= ' ' || c is '<' or '"' or '{' or '}' or '|' or '^' or '`')
                {
                    throw Fail($"character U+{(int)c:X4} is not allowed in an IRI");
                }

                iri.Append(c);
                _at++;
            }
        }

        private string Blank(string role)
        {
            if (_at + 2 > text.Length || text[_at] != '_' || text[_at + 1] != ':')
            {
                throw Fail($"{role} must be an IRI <...> or a blank node _:label");
            }

            int start = _at;
            _at += 2;
            while (!AtEnd && text[_at] is not (' ' or '\t'))
            {
                _at++;
            }

            // A label may contain '.', but never end with it: "_:b1." is the label b1 then the dot.
            if (text[_at - 1] == '.' && _at - start > 3)
            {
                _at--;
            }

            if (_at - start == 2)
            {
                throw Fail($"{role} blank node has no label");
            }

            return text[start.._at];
        }

        private string Literal(IDictionary<string, string> payload)
        {
            _at++;
            var lexical = new StringBuilder();
            while (true)
            {
                if (AtEnd)
                {
                    throw Fail("literal is not closed with '\"'");
                }

                char c = text[_at];
                if (c == '"')
                {
                    _at++;
                    break;
                }

                if (c == '\\')
                {
                    lexical.Append(Escape(allowCharacterEscapes: true));
                    continue;
                }

                lexical.Append(c);
                _at++;
            }

            payload["object"] = "literal";
            if (!AtEnd && Peek == '@')
            {
                int start = ++_at;
                while (!AtEnd && (char.IsAsciiLetterOrDigit(Peek) || Peek == '-'))
                {
                    _at++;
                }

                if (_at == start)
                {
                    throw Fail("language tag is empty");
                }

                payload["language"] = text[start.._at];
            }
            else if (_at + 1 < text.Length && Peek == '^' && text[_at + 1] == '^')
            {
                _at += 2;
                payload["datatype"] = Iri("datatype");
            }

            return lexical.ToString();
        }

        private string Escape(bool allowCharacterEscapes)
        {
            char kind = _at + 1 < text.Length ? text[_at + 1] : '\0';
            int digits = kind switch { 'u' => 4, 'U' => 8, _ => 0 };
            if (digits > 0)
            {
                if (_at + 2 + digits > text.Length
                    || !int.TryParse(text.AsSpan(_at + 2, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
                    || code is < 0 or > 0x10FFFF or (>= 0xD800 and <= 0xDFFF)) // \U80000000 and up parse as negative
                {
                    throw Fail($"bad \\{kind} escape");
                }

                _at += 2 + digits;
                return char.ConvertFromUtf32(code);
            }

            string? plain = allowCharacterEscapes
                ? kind switch { 't' => "\t", 'b' => "\b", 'n' => "\n", 'r' => "\r", 'f' => "\f", '"' => "\"", '\'' => "'", '\\' => "\\", _ => null }
                : null;
            if (plain is null)
            {
                throw Fail($"bad escape \\{kind}");
            }

            _at += 2;
            return plain;
        }

        private readonly FormatException Fail(string message) => new($"{message} (column {_at + 1})");
    }
}
