using System.Text;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Splits a stream into lines of raw bytes (<c>\n</c> or <c>\r\n</c> ends; a UTF-8 byte-order mark
/// at the start is dropped, a UTF-16 one refuses the input) and decodes each one on its own with a strict UTF-8 decoder, so a bad
/// byte rejects its line only and every later line keeps its number. A line longer than
/// <see cref="MaxLineBytes"/> is skipped and reported, so memory stays bounded whatever the input.
/// </summary>
internal sealed class Utf8LineReader(Stream stream)
{
    /// <summary>The longest line kept (16 MiB): room for a JSON line with a 4096-wide vector and payload.</summary>
    public const int MaxLineBytes = 16 * 1024 * 1024;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private bool _eof;
    private bool _first = true;

    /// <summary>Why a line over <see cref="MaxLineBytes"/> is rejected.</summary>
    public static string TooLong { get; } = $"line is longer than {MaxLineBytes} bytes";

    /// <summary>The 1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Reads the next line's bytes (without its end); false at the end of the stream.
    /// <paramref name="tooLong"/> is set (and the bytes empty) for a line over the limit.</summary>
    public bool TryRead(out ReadOnlyMemory<byte> line, out bool tooLong)
    {
        tooLong = false;
        int scanned = 0; // bytes after _start already searched for a line end
        while (true)
        {
            int newline = _buffer.AsSpan(_start + scanned, _end - _start - scanned).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                int lineEnd = _start + scanned + newline;
                line = Take(lineEnd, lineEnd + 1);
                return true;
            }

            if (_eof)
            {
                if (_start == _end)
                {
                    line = default;
                    return false;
                }

                line = Take(_end, _end);
                return true;
            }

            if (_end - _start >= MaxLineBytes)
            {
                SkipRestOfLine();
                LineNumber++;
                _first = false;
                tooLong = true;
                line = default;
                return true;
            }

            scanned = _end - _start;
            Fill();
        }
    }

    /// <summary>Reads and decodes the next line; false at the end of the stream. For a line over the
    /// limit or not valid UTF-8, <paramref name="text"/> is null and <paramref name="reason"/> says
    /// why, so that a reader rejects that line alone.</summary>
    public bool TryReadText(out string? text, out string? reason)
    {
        text = reason = null;
        if (!TryRead(out ReadOnlyMemory<byte> bytes, out bool tooLong))
        {
            return false;
        }

        if (tooLong)
        {
            reason = TooLong;
        }
        else
        {
            text = Decode(bytes.Span, out reason);
        }

        return true;
    }

    /// <summary>Decodes a line strictly; null with the reason when it is not valid UTF-8.</summary>
    public static string? Decode(ReadOnlySpan<byte> line, out string? reason)
    {
        try
        {
            reason = null;
            return Strict.GetString(line);
        }
        catch (DecoderFallbackException e)
        {
            reason = $"invalid UTF-8 at byte {Math.Max(0, e.Index) + 1}";
            return null;
        }
    }

    private ReadOnlyMemory<byte> Take(int lineEnd, int next)
    {
        int from = _start;
        int to = lineEnd > from && _buffer[lineEnd - 1] == '\r' ? lineEnd - 1 : lineEnd;
        if (_first && lineEnd - from >= 2 && (_buffer[from], _buffer[from + 1]) is (0xFF, 0xFE) or (0xFE, 0xFF))
        {
            // Read as UTF-8, a UTF-16 file's ASCII lines are valid, with a NUL byte beside each
            // character: they would be stored as names nobody can type, and only the lines with
            // other characters rejected.
            throw new InvalidDataException("the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8, for example with iconv -f UTF-16 -t UTF-8");
        }

        if (_first && to - from >= 3 && _buffer[from] == 0xEF && _buffer[from + 1] == 0xBB && _buffer[from + 2] == 0xBF)
        {
            from += 3;
        }

        _first = false;
        _start = next;
        LineNumber++;
        return _buffer.AsMemory(from, to - from);
    }

    /// <summary>Reads more bytes after the unread part, moving it to the front or growing the buffer first.</summary>
    private void Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, MaxLineBytes + 1));
        }

        int read = stream.Read(_buffer, _end, _buffer.Length - _end);
        _eof = read == 0;
        _end += read;
    }

    private void SkipRestOfLine()
    {
        _start = _end = 0;
        while (true)
        {
            int read = stream.Read(_buffer, 0, _buffer.Length);
            if (read == 0)
            {
                _eof = true;
                return;
            }

            int newline = _buffer.AsSpan(0, read).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                _start = newline + 1;
                _end = read;
                return;
            }
        }
    }
}
