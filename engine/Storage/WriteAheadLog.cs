using System.Buffers.Binary;
using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The collection's write-ahead log: one FASTER log entry per write batch, committed (flushed and
/// its commit record written) before the batch is acknowledged. Recovery replays the entries after
/// the address recorded in the last state-store checkpoint.
/// </summary>
/// <remarks>An entry must fit in one log page, so the page size bounds the encoded batch size.
/// Once a commit record could not be written the log commits nothing more: a later record would
/// make durable the entries whose write was reported failed. Reopening recovers the last durable
/// commit and drops those entries.</remarks>
internal sealed class WriteAheadLog : IDisposable
{
    private readonly FasterLogSettings _settings;
    private readonly DurableLogCommitManager _commits;
    private readonly OpenCheckedDevice _files;
    private readonly FasterLog _log;

    public WriteAheadLog(string directory, int pageSizeBits)
    {
        Directory.CreateDirectory(directory);
        // FASTER would wait on it forever (see FolderInPlaceOfFile).
        FolderInPlaceOfFile.RefuseNumbered(directory, LogFileName, "the write-ahead log");
        _commits = new DurableLogCommitManager(directory);
        _settings = new FasterLogSettings(directory)
        {
            PageSizeBits = pageSizeBits,
            MemorySizeBits = pageSizeBits + 1,
            SegmentSizeBits = Math.Max(30, pageSizeBits + 1),
            LogCommitManager = _commits,
        };
        // Disposed with the settings, which created the device it wraps.
        _files = new OpenCheckedDevice(_settings.LogDevice);
        _settings.LogDevice = _files;
        _log = new FasterLog(_settings);
        if (_commits.UnreadableCommit is { } unreadable)
        {
            Dispose();
            string problem = $"the write-ahead log in {directory} has a commit record that cannot be read: {unreadable.Message}";
            throw unreadable is InvalidDataException ? new InvalidDataException(problem, unreadable) : new IOException(problem, unreadable);
        }

        MaxEntryBytes = (1 << pageSizeBits) - 64;
    }

    /// <summary>FASTER's log files in the log's folder, one per segment: <c>fasterlog.log.N</c>
    /// (FasterLogSettings' default name).</summary>
    private const string LogFileName = "fasterlog.log";

    /// <summary>The first address of a log never truncated (FASTER reserves the ones before it).</summary>
    public const long FirstAddress = 64;

    /// <summary>FASTER's header before each entry: its length (no per-entry checksum is asked for).</summary>
    private const int EntryHeaderBytes = sizeof(int);

    /// <summary>The largest entry a page holds, less the entry header.</summary>
    public int MaxEntryBytes { get; }

    /// <summary>The address after the last committed entry.</summary>
    public long CommittedUntil => _log.CommittedUntilAddress;

    /// <summary>Whether a commit record is on disk: a log no write was committed to has none.</summary>
    public bool HasCommitRecord => _commits.ListCommits().Any();

    /// <summary>The first address still kept.</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Bytes of log currently kept (written since the last truncation).</summary>
    public long RetainedBytes => _log.TailAddress - _log.BeginAddress;

    /// <summary>Appends one entry and waits until it is durable.</summary>
    public async ValueTask AppendDurableAsync(ReadOnlyMemory<byte> entry)
    {
        ThrowIfCommitFailed();
        _log.Enqueue(entry.Span);
        await CommitAsync();
    }

    /// <summary>The committed entries at or after an address, in order, each with its address and
    /// the address after it.</summary>
    public IEnumerable<(byte[] Entry, long Address, long NextAddress)> ReadCommitted(long fromAddress)
    {
        long start = Math.Max(fromAddress, _log.BeginAddress);
        long end = _log.CommittedUntilAddress;
        if (start >= end)
        {
            yield break;
        }

        using FasterLogScanIterator iterator = _log.Scan(start, end);
        while (iterator.GetNext(out byte[] entry, out int length, out long address, out long nextAddress))
        {
            yield return (length == entry.Length ? entry : entry[..length], address, nextAddress);
        }
    }

    /// <summary>
    /// The entries that lie in the log's files past its committed end, framed as FASTER frames them
    /// (an int32 length, the entry, zeros to a multiple of 4; a zero length pads out a page, and
    /// entries never cross one), up to the first bytes that frame none. Recovery stops at the last
    /// commit record, and the next append writes over whatever follows, so these are the entries a
    /// lost or outdated commit record would silently drop.
    /// </summary>
    public IEnumerable<(byte[] Entry, long Address)> ReadPastCommitted()
    {
        long address = _log.CommittedUntilAddress;
        while (ReadFiles(address, EntryHeaderBytes) is { } header)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            long offsetInPage = address & (_settings.PageSize - 1);
            if (length == 0 && offsetInPage > 0)
            {
                address += _settings.PageSize - offsetInPage;
                continue;
            }

            long framed = EntryHeaderBytes + ((length + 3L) & ~3L);
            if (length <= 0 || offsetInPage + framed > _settings.PageSize || ReadFiles(address + EntryHeaderBytes, length) is not { } entry)
            {
                yield break;
            }

            yield return (entry, address);
            address += framed;
        }
    }

    /// <summary>The bytes at a log address, read from its segment file, or null where the file
    /// does not hold them all.</summary>
    private byte[]? ReadFiles(long address, int count)
    {
        string file = $"{_settings.LogDevice.FileName}.{address / _settings.SegmentSize}";
        if (!File.Exists(file))
        {
            return null;
        }

        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Position = address % _settings.SegmentSize;
        byte[] bytes = new byte[count];
        return stream.ReadAtLeast(bytes, count, throwOnEndOfStream: false) == count ? bytes : null;
    }

    /// <summary>Drops entries before an address (already captured by a checkpoint) and commits that.</summary>
    /// <remarks>Awaited rather than spin-waited: the commit completes on thread-pool threads, which a
    /// spinning pool thread may keep from running on a loaded machine.</remarks>
    public async ValueTask TruncateUntilAsync(long address)
    {
        ThrowIfCommitFailed();
        _log.TruncateUntil(address);
        await CommitAsync();
    }

    /// <summary>Commits up to the tail; throws if the log's data or its commit record could not be written.</summary>
    /// <remarks>FASTER surfaces a failed data write through its own commit task, but a commit record
    /// that fails to write leaves that task waiting (its commit worker swallows the exception), so
    /// the commit manager's failure is awaited alongside.</remarks>
    private async Task CommitAsync()
    {
        Task committed = _log.CommitAsync().AsTask();
        try
        {
            await await Task.WhenAny(committed, _commits.Failed);
        }
        catch (CommitFailureException failure) when (WriteRefusal(failure.LinkedCommitInfo.CommitInfo) is { } refusal)
        {
            // FASTER's failure gives only an error code; the file it could not open says why.
            throw new IOException($"the write-ahead log's {refusal}", failure);
        }
    }

    /// <summary>Why a file that <paramref name="failed"/> (the range whose write failed) lies in
    /// could not be opened for writing, if that is why it failed.</summary>
    private string? WriteRefusal(CommitInfo failed)
    {
        for (long segment = failed.FromAddress / _settings.SegmentSize; segment * _settings.SegmentSize < failed.UntilAddress; segment++)
        {
            if (_files.WriteRefusal((int)segment) is { } refusal)
            {
                return refusal;
            }
        }

        return null;
    }

    private void ThrowIfCommitFailed()
    {
        if (_commits.Failed.IsFaulted)
        {
            throw new IOException("the write-ahead log stopped after a commit record failed to write; reopen to recover it", _commits.Failed.Exception!.InnerException);
        }
    }

    public void Dispose()
    {
        _log.Dispose();
        _settings.Dispose();
        _commits.Dispose();
    }
}
