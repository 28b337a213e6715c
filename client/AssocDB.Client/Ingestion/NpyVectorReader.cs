using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Reads concept vectors from a NumPy <c>.npy</c> file (format versions 1–3): a 2-D array
/// <c>[rows, dimension]</c> of float32 or float64 (<c>&lt;f4</c>, <c>&lt;f8</c>, or big-endian
/// <c>&gt;f4</c>, <c>&gt;f8</c>) in C order, with a names file holding one name per line, row i's name
/// on line i. float64 values are narrowed to float32. Rows are streamed, never held all at once.
/// A file that is not such an array, or whose names file has another number of lines than the
/// array has rows, is refused whole (<see cref="InvalidDataException"/>): the rows could not be
/// matched to names.
/// </summary>
internal static partial class NpyVectorReader
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads the header; the stream is then at the first row.</summary>
    public static (long Rows, int Dimension, int ElementBytes, bool BigEndian) ReadHeader(Stream stream, string source)
    {
        Span<byte> prefix = stackalloc byte[10];
        stream.ReadExactly(prefix[..8]);
        if (!prefix[..6].SequenceEqual(Magic))
        {
            throw new InvalidDataException($"{source}: not a NumPy .npy file (bad magic)");
        }

        byte major = prefix[6];
        int headerLength;
        if (major == 1)
        {
            stream.ReadExactly(prefix.Slice(8, 2));
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix.Slice(8, 2));
        }
        else if (major is 2 or 3)
        {
            Span<byte> length = stackalloc byte[4];
            stream.ReadExactly(length);
            headerLength = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(length));
        }
        else
        {
            throw new InvalidDataException($"{source}: .npy format version {major} is not supported (1, 2 or 3)");
        }

        if (headerLength > 1 << 20)
        {
            throw new InvalidDataException($"{source}: .npy header of {headerLength} bytes is implausibly long");
        }

        byte[] headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);

        Match descr = DescrPattern().Match(header);
        Match order = FortranPattern().Match(header);
        Match shape = ShapePattern().Match(header);
        if (!descr.Success || !order.Success || !shape.Success)
        {
            throw new InvalidDataException($"{source}: .npy header lacks descr, fortran_order or shape: {header.Trim()}");
        }

        string type = descr.Groups[1].Value;
        if (type is not ("<f4" or "<f8" or ">f4" or ">f8"))
        {
            throw new InvalidDataException($"{source}: element type '{type}' is not supported; use float32 or float64");
        }

        if (order.Groups[1].Value == "True")
        {
            throw new InvalidDataException($"{source}: Fortran-order arrays are not supported; save the array in C order (numpy.ascontiguousarray)");
        }

        string[] dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (dims.Length != 2
            || !long.TryParse(dims[0], CultureInfo.InvariantCulture, out long rows)
            || !int.TryParse(dims[1], CultureInfo.InvariantCulture, out int dimension)
            || dimension < 1)
        {
            throw new InvalidDataException($"{source}: shape ({shape.Groups[1].Value}) is not a 2-D array [rows, dimension]");
        }

        return (rows, dimension, type[2] == '4' ? 4 : 8, type[0] == '>');
    }

    public static IEnumerable<IngestItem> Read(Stream stream, string source, string namesPath, IngestReadOptions options)
    {
        (long rows, int dimension, int elementBytes, bool bigEndian) = ReadHeader(stream, source);
        if (options.Dimension is int expected && expected != dimension)
        {
            throw new InvalidDataException($"{source}: rows have {dimension} components; the collection's dimension is {expected}");
        }

        long names = CountLines(namesPath);
        if (names != rows)
        {
            throw new InvalidDataException($"{source}: the array has {rows} rows but {namesPath} has {names} lines; they must match one to one");
        }

        return ReadRows(stream, source, namesPath, rows, dimension, elementBytes, bigEndian, options.Cosine);
    }

    private static IEnumerable<IngestItem> ReadRows(Stream stream, string source, string namesPath, long rows, int dimension, int elementBytes, bool bigEndian, bool cosine)
    {
        using Stream namesStream = IngestSource.OpenDecompressed(namesPath);
        var names = new Utf8LineReader(namesStream);
        byte[] row = new byte[dimension * elementBytes];
        int? width = dimension;
        for (long r = 1; r <= rows; r++)
        {
            stream.ReadExactly(row);
            names.TryRead(out ReadOnlyMemory<byte> nameBytes, out bool tooLong);
            string? reason = null;
            string? name = tooLong ? null : Utf8LineReader.Decode(nameBytes.Span, out reason);
            reason ??= tooLong ? "name is too long" : ItemChecks.Name(name, "name");
            float[] values = Decode(row, dimension, elementBytes, bigEndian);
            reason ??= ItemChecks.Vector(values, ref width, "vector", cosine);
            yield return reason is null
                ? new ConceptItem(source, r, new ConceptInput { Name = name, Vector = Vectors.Of(values) })
                : new RejectedItem(source, r, reason);
        }
    }

    private static float[] Decode(byte[] row, int dimension, int elementBytes, bool bigEndian)
    {
        var values = new float[dimension];
        for (int i = 0; i < dimension; i++)
        {
            ReadOnlySpan<byte> bytes = row.AsSpan(i * elementBytes, elementBytes);
            values[i] = (elementBytes, bigEndian) switch
            {
                (4, false) => BinaryPrimitives.ReadSingleLittleEndian(bytes),
                (4, true) => BinaryPrimitives.ReadSingleBigEndian(bytes),
                (_, false) => (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes),
                _ => (float)BinaryPrimitives.ReadDoubleBigEndian(bytes),
            };
        }

        return values;
    }

    private static long CountLines(string path)
    {
        using Stream stream = IngestSource.OpenDecompressed(path);
        var lines = new Utf8LineReader(stream);
        long count = 0;
        while (lines.TryRead(out _, out _))
        {
            count++;
        }

        return count;
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
