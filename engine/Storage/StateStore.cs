using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The collection's materialized state in a FASTER key-value store: one record per concept,
/// relation and edge, keyed by kind and id. Writes land in memory and reach disk with a
/// checkpoint; the checkpoint carries, as its commit cookie, the write-ahead-log address it covers,
/// so recovery knows where replay starts, and the caller's estimate of the superseded bytes the
/// log holds, so that estimate survives a restart.
/// </summary>
/// <remarks>
/// <para>
/// FASTER's log is append-only: an update or delete leaves the old record behind. <see cref="Compact"/>
/// copies the live records of the log's immutable part to its tail and moves the begin address past
/// them; the next checkpoint, once durable, deletes the log segments wholly below it. Until then the
/// previous checkpoint still has every record it needs, so a crash in between loses nothing.
/// </para>
/// <para>
/// A session is opened per write batch rather than held, because FASTER's checkpoint state machine
/// waits for every open session to make progress; with none open, checkpoints complete on their own.
/// Callers serialize writes (the collection's writer lock).
/// </para>
/// </remarks>
internal sealed class StateStore : IDisposable
{
    private const int KeyBytes = 5;

    /// <summary>The share of the in-memory log that is mutable (FASTER's default, stated here
    /// because the compaction estimate depends on it).</summary>
    private const double MutableFraction = 0.9;
    private readonly FasterKVSettings<SpanByte, SpanByte> _settings;
    private readonly FasterKV<SpanByte, SpanByte> _store;

    /// <summary>Opens (recovering the latest checkpoint) or creates the store in a folder, with the
    /// layout it was created with (see <see cref="StateLayout"/>); its memory is raised to four pages
    /// if <paramref name="memoryBytes"/> is less.</summary>
    public StateStore(string directory, long indexBytes, long memoryBytes, long segmentBytes)
    {
        Directory.CreateDirectory(directory);
        Layout = StateLayout.Resolve(directory, memoryBytes, segmentBytes);
        _settings = new FasterKVSettings<SpanByte, SpanByte>(directory, deleteDirOnDispose: false)
        {
            IndexSize = indexBytes,
            MemorySize = Math.Max(memoryBytes, 4 * Layout.PageBytes),
            PageSize = Layout.PageBytes,
            SegmentSize = Layout.SegmentBytes,
            MutableFraction = MutableFraction,
            TryRecoverLatest = true,
            RemoveOutdatedCheckpoints = true,
        };
        _store = new FasterKV<SpanByte, SpanByte>(_settings);
        if (_store.RecoveredCommitCookie is { Length: >= sizeof(long) } cookie)
        {
            RecoveredCheckpoint = true;
            RecoveredLogAddress = BitConverter.ToInt64(cookie);
            // Checkpoints written before the estimate was kept carry the address alone.
            RecoveredSupersededBytes = cookie.Length >= 2 * sizeof(long) ? BitConverter.ToInt64(cookie, sizeof(long)) : 0;
        }
    }

    /// <summary>The page and file sizes the store runs with.</summary>
    public StateLayout Layout { get; }

    /// <summary>The largest encoded value a record may have: a record (header, key and value, with
    /// their lengths) must fit in one page.</summary>
    public long MaxValueBytes => Layout.PageBytes - 64;

    /// <summary>Whether a checkpoint was recovered. FASTER swallows its recovery errors and opens
    /// empty, so false means "none, or none readable"; the caller checks that against the log.</summary>
    public bool RecoveredCheckpoint { get; }

    /// <summary>The write-ahead-log address the recovered checkpoint covers (0 when none).</summary>
    public long RecoveredLogAddress { get; }

    /// <summary>The superseded-bytes estimate the recovered checkpoint recorded (0 when none).</summary>
    public long RecoveredSupersededBytes { get; }

    /// <summary>Bytes of log between its begin address and its tail, live and superseded records alike.</summary>
    public long LogBytes => _store.Log.TailAddress - _store.Log.BeginAddress;

    /// <summary>The log's tail address: how far it has been appended.</summary>
    public long TailAddress => _store.Log.TailAddress;

    /// <summary>Bytes at the log's tail where FASTER updates records in place.</summary>
    public long MutableBytes => (long)(_settings.MemorySize * MutableFraction);

    /// <summary>Opens a batch of writes; dispose it to end the batch.</summary>
    public Writer BeginWrites() => new(_store.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>());

    /// <summary>Visits every live record (latest version of each key).</summary>
    public void ForEach(Action<RecordKind, int, ReadOnlySpan<byte>> visit)
    {
        using var session = _store.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>();
        using IFasterScanIterator<SpanByte, SpanByte> iterator = session.Iterate();
        while (iterator.GetNext(out RecordInfo info))
        {
            if (info.Tombstone)
            {
                continue;
            }

            ReadOnlySpan<byte> key = iterator.GetKey().AsReadOnlySpan();
            visit((RecordKind)key[0], BitConverter.ToInt32(key[1..]), iterator.GetValue().AsReadOnlySpan());
        }
    }

    /// <summary>
    /// Copies every live record of the log to its tail and moves the begin address past the old
    /// copies (FASTER's lookup compaction: each record is kept if the index still points at it).
    /// Callers must not write meanwhile. Disk is freed by the next checkpoint.
    /// </summary>
    public void Compact()
    {
        _store.Log.ShiftReadOnlyAddress(_store.Log.TailAddress, wait: true);
        using var session = _store.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>();
        session.Compact(_store.Log.SafeReadOnlyAddress, CompactionType.Lookup);
    }

    /// <summary>Takes a checkpoint that records <paramref name="logAddress"/> as covered (and the
    /// caller's superseded-bytes estimate), and waits for it.</summary>
    /// <remarks>Not cancellable: FASTER leaves a checkpoint cancelled part way in progress, refusing the next.</remarks>
    public async Task CheckpointAsync(long logAddress, long supersededBytes)
    {
        _store.CommitCookie = [.. BitConverter.GetBytes(logAddress), .. BitConverter.GetBytes(supersededBytes)];
        (bool success, _) = await _store.TakeFullCheckpointAsync(CheckpointType.FoldOver);
        if (!success)
        {
            throw new InvalidOperationException("the state store refused to start a checkpoint (another is in progress)");
        }
    }

    public void Dispose()
    {
        _store.Dispose();
        _settings.Dispose();
    }

    /// <summary>A short-lived session applying one batch of upserts and deletes.</summary>
    internal readonly struct Writer(ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>> session) : IDisposable
    {
        public unsafe void Upsert(RecordKind kind, int id, ReadOnlySpan<byte> value)
        {
            Span<byte> keyBytes = stackalloc byte[KeyBytes];
            WriteKey(keyBytes, kind, id);
            fixed (byte* valuePointer = value)
            {
                var key = SpanByte.FromFixedSpan(keyBytes);
                var record = SpanByte.FromPointer(valuePointer, value.Length);
                session.Upsert(ref key, ref record);
            }
        }

        public void Delete(RecordKind kind, int id)
        {
            Span<byte> keyBytes = stackalloc byte[KeyBytes];
            WriteKey(keyBytes, kind, id);
            var key = SpanByte.FromFixedSpan(keyBytes);
            session.Delete(ref key);
        }

        public void Dispose()
        {
            session.CompletePending(wait: true);
            session.Dispose();
        }

        private static void WriteKey(Span<byte> key, RecordKind kind, int id)
        {
            key[0] = (byte)kind;
            BitConverter.TryWriteBytes(key[1..], id);
        }
    }
}
