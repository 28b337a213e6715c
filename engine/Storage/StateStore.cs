using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The collection's materialized state in a FASTER key-value store: one record per concept,
/// relation and edge, keyed by kind and id. Writes land in memory and reach disk with a
/// checkpoint; the checkpoint carries, as its commit cookie, the write-ahead-log address it covers,
/// so recovery knows where replay starts.
/// </summary>
/// <remarks>
/// A session is opened per write batch rather than held, because FASTER's checkpoint state machine
/// waits for every open session to make progress; with none open, checkpoints complete on their own.
/// Callers serialize writes (the collection's writer lock).
/// </remarks>
internal sealed class StateStore : IDisposable
{
    private const int KeyBytes = 5;
    private readonly FasterKVSettings<SpanByte, SpanByte> _settings;
    private readonly FasterKV<SpanByte, SpanByte> _store;

    public StateStore(string directory, long indexBytes, long memoryBytes)
    {
        Directory.CreateDirectory(directory);
        _settings = new FasterKVSettings<SpanByte, SpanByte>(directory, deleteDirOnDispose: false)
        {
            IndexSize = indexBytes,
            MemorySize = memoryBytes,
            PageSize = Math.Min(memoryBytes / 4, 1L << 22),
            TryRecoverLatest = true,
            RemoveOutdatedCheckpoints = true,
        };
        _store = new FasterKV<SpanByte, SpanByte>(_settings);
        RecoveredLogAddress = _store.RecoveredCommitCookie is { Length: sizeof(long) } cookie ? BitConverter.ToInt64(cookie) : 0;
    }

    /// <summary>The write-ahead-log address the recovered checkpoint covers (0 when none).</summary>
    public long RecoveredLogAddress { get; }

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

    /// <summary>Takes a checkpoint that records <paramref name="logAddress"/> as covered, and waits for it.</summary>
    public async Task CheckpointAsync(long logAddress, CancellationToken cancellationToken)
    {
        _store.CommitCookie = BitConverter.GetBytes(logAddress);
        (bool success, _) = await _store.TakeFullCheckpointAsync(CheckpointType.FoldOver, cancellationToken);
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
