using System.IO.Compression;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// One input file: its format, its items, and how far reading has got, for progress. A
/// <c>.gz</c> file is decompressed on the fly; <see cref="BytesRead"/> then counts compressed
/// bytes, so it still runs up to <see cref="Length"/>.
/// </summary>
public sealed class IngestSource : IDisposable
{
    private readonly CountingStream _file;
    private readonly Stream _content;
    private readonly IngestReadOptions _options;

    private IngestSource(string path, IngestFormat format, IngestReadOptions options)
    {
        Path = path;
        Format = format;
        _options = options;
        _file = new CountingStream(File.OpenRead(path));
        _content = IsGzip(path) ? new GZipStream(_file, CompressionMode.Decompress) : _file;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The format it is read as (never <see cref="IngestFormat.Auto"/>).</summary>
    public IngestFormat Format { get; }

    /// <summary>The file's size on disk; 0 for one that has none to tell, a pipe or a FIFO.</summary>
    public long Length => _file.Length;

    /// <summary>Whether the file has a size (false for a pipe or a FIFO).</summary>
    public bool HasLength => _file.HasLength;

    /// <summary>Bytes of the file read so far; safe to read from any thread.</summary>
    public long BytesRead => _file.BytesRead;

    /// <summary>Opens a file. Throws <see cref="FileNotFoundException"/> when it is missing and
    /// <see cref="ArgumentException"/> when <see cref="IngestFormat.Auto"/> cannot tell its format.</summary>
    public static IngestSource Open(string path, IngestFormat format = IngestFormat.Auto, IngestReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        IngestFormat resolved = format == IngestFormat.Auto ? Detect(path) : format;
        return new IngestSource(path, resolved, options ?? new IngestReadOptions());
    }

    /// <summary>The format a file name implies; <see cref="ArgumentException"/> when it implies none.</summary>
    public static IngestFormat Detect(string path) => BareExtension(path) switch
    {
        ".tsv" or ".txt" => IngestFormat.Tsv,
        ".csv" => IngestFormat.Csv,
        ".jsonl" or ".ndjson" => IngestFormat.JsonLines,
        ".nt" => IngestFormat.NTriples,
        ".npy" or ".vec" or ".vectors" => IngestFormat.Vectors,
        string other => throw new ArgumentException($"cannot tell the format of '{path}' from its extension '{other}'; pass --format", nameof(path)),
    };

    /// <summary>Opens a file for reading, decompressing a <c>.gz</c> one.</summary>
    public static Stream OpenDecompressed(string path)
    {
        FileStream file = File.OpenRead(path);
        return IsGzip(path) ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    /// <summary>The file's items in order: facts, concepts and rejected lines. Read once.</summary>
    public IEnumerable<IngestItem> Read() => Format switch
    {
        IngestFormat.Tsv => TripleReader.Read(_content, Path, '\t'),
        IngestFormat.Csv => TripleReader.Read(_content, Path, ','),
        IngestFormat.JsonLines => JsonLinesReader.Read(_content, Path, _options),
        IngestFormat.NTriples => NTriplesReader.Read(_content, Path),
        IngestFormat.Vectors when BareExtension(Path) == ".npy" => NpyVectorReader.Read(_content, Path, NamesFileOf(Path, _options)!, _options),
        IngestFormat.Vectors => VectorTextReader.Read(_content, Path, _options),
        _ => throw new ArgumentOutOfRangeException(nameof(Format), Format, "not a concrete format"),
    };

    /// <inheritdoc />
    public void Dispose() => _content.Dispose();

    /// <summary>The names file a <c>.npy</c> input is read with (<see cref="IngestReadOptions.NamesPath"/>,
    /// else its <c>.names</c> sibling); null for other inputs, which carry their names.</summary>
    public static string? NamesFileOf(string path, IngestReadOptions options)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        if (BareExtension(path) != ".npy")
        {
            return null;
        }

        return options.NamesPath ?? System.IO.Path.ChangeExtension(IsGzip(path) ? path[..^3] : path, ".names");
    }

    private static bool IsGzip(string path) => path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);

    private static string BareExtension(string path) =>
        System.IO.Path.GetExtension(IsGzip(path) ? path[..^3] : path).ToLowerInvariant();

    /// <summary>A read-only pass-through that counts the bytes read, readable from another thread.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        private long _read;

        public long BytesRead => Interlocked.Read(ref _read);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public bool HasLength => inner.CanSeek;

        public override long Length => HasLength ? inner.Length : 0;

        public override long Position
        {
            get => BytesRead;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private int Count(int read)
        {
            Interlocked.Add(ref _read, read);
            return read;
        }
    }
}
