using AssocDB.Engine.Graph;
using AssocDB.Engine.Learning;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Vectors;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace AssocDB.Engine;

/// <summary>
/// One collection: its concepts (rows of the concept matrix), relations and facts, durable in a
/// write-ahead log plus a checkpointed state store.
/// </summary>
/// <remarks>
/// Writes are serialized by a writer lock and go plan → log (durable) → apply: the plan reads the
/// current state and resolves names to ids, the log entry is committed before anything changes in
/// memory, and the apply step changes the tables and the matrix under the state lock's write side
/// while the state store, which only checkpoints read, follows on another core. Readers hold the
/// state lock's read side, so they never see half a batch. A batch that fails validation changes
/// nothing and logs nothing.
/// </remarks>
public sealed partial class Collection
{
    private readonly CollectionManifest _manifest;

    /// <summary>The collection's manifest, as its folder holds it.</summary>
    internal CollectionManifest Manifest => _manifest;

    /// <summary>
    /// The state store's share of the last applied batch, running in the background. Nothing reads
    /// the store but checkpoints, which wait for it, so a write returns once the log is durable and
    /// memory is updated, and the store's upserts (a third of applying) run on another core beside
    /// the memory update and the next batch's planning. It lags by at most one batch: the next
    /// write waits for it before logging, and if it failed, the collection stops (see
    /// <see cref="Fail"/>) so that no checkpoint truncates the log past what the store holds.
    /// </summary>
    private Task _storeCatchUp = Task.CompletedTask;

    /// <summary>The writer's buffers for encoding log entries, reused under the writer lock, each
    /// keeping the size of the largest batch so far (at most a log page). Entries alternate between
    /// the two: the state store applies the last batch from its entry in the background (see
    /// <see cref="_storeCatchUp"/>) while the next one is encoded.</summary>
    private readonly EntryBuffer[] _entryBuffers = [new(), new()];

    /// <summary>The write-ahead log's folder in the collection's.</summary>
    internal const string LogFolder = "wal";

    /// <summary>The state store's folder in the collection's.</summary>
    internal const string StateFolder = "state";

    private readonly WriteAheadLog _log;

    /// <summary>The sequence number of the last entry in the log (see <see cref="RecordCodec"/>);
    /// written and read under the writer lock.</summary>
    private long _logSequence;

    private readonly StateStore _store;
    private readonly ConceptMatrix _matrix;
    private readonly VectorSearch _search;
    private readonly ConceptTable _concepts = new();
    private readonly RelationTable _relations = new();
    private readonly EdgeIndex _edges = new();
    private readonly IngestMarks _ingestMarks = new();

    /// <summary>How many ingest sessions keep their marks (see <see cref="DatabaseOptions.IngestSessionsKept"/>).</summary>
    private readonly int _ingestSessionsKept;

    /// <summary>Per relation, the running mean of <c>v(tail) − v(head)</c> (the closed-form relation
    /// vector), updated as facts and concept vectors change; derived state, rebuilt at open.</summary>
    private readonly RelationVectorEstimator _closedForm;
    private readonly float[] _headScratch;
    private readonly float[] _tailScratch;

    /// <summary>The rows a batch writes to W, gathered as it is applied and then written at once;
    /// kept from batch to batch (only the writer, or recovery, applies), as a bulk load's first
    /// batches create thousands of concepts each.</summary>
    private readonly Dictionary<int, float[]> _pendingRows = [];
    private readonly SemaphoreSlim _writer = new(1, 1);
    private readonly ReaderWriterLockSlim _state = new(LockRecursionPolicy.NoRecursion);
    private readonly ILogger _logger;

    /// <summary>How long a checkpoint of the state store is waited for (see <see cref="DatabaseOptions.StateCheckpointTimeout"/>).</summary>
    private readonly TimeSpan _checkpointTimeout;
    private bool _closed;

    /// <summary>Set when a write failed after its log append (see <see cref="Fail"/>).</summary>
    private EngineError? _failure;

    /// <summary>Set when a log append failed (see <see cref="StopWrites"/>).</summary>
    private EngineError? _logFailure;

    /// <summary>Whether the state store's going out of service was logged (see <see cref="StoreOutOfService"/>).</summary>
    private bool _storeOutOfServiceLogged;

    private readonly long _minFreeDiskBytes;

    /// <summary>What a compaction of the state store would reclaim; see <see cref="CompactionDue"/>.
    /// Set once the store has recovered.</summary>
    private SupersededRecords _superseded = null!;

    /// <summary>The state store's tail address when the current checkpoint interval began.</summary>
    private long _intervalStartTail;

    private Collection(string directory, CollectionManifest manifest, DatabaseOptions options, torch.Device device, VectorSearch search, ILogger logger)
    {
        Directory = directory;
        // A manifest without the log's page size is from before the page and the state store's
        // layout were kept (one change): its log was written with the option's page, and its store
        // may have no layout file.
        bool predatesLayouts = manifest.LogPageSizeBits is null;
        int logPageSizeBits = manifest.LogPageSizeBits ?? options.LogPageSizeBits;
        _manifest = manifest with { LogPageSizeBits = logPageSizeBits, FormatVersion = CollectionManifest.CurrentFormatVersion };
        _logger = logger;
        _minFreeDiskBytes = options.MinFreeDiskBytes;
        _ingestSessionsKept = options.IngestSessionsKept;
        _log = new WriteAheadLog(Path.Combine(directory, LogFolder), logPageSizeBits);
        try
        {
            _store = new StateStore(
                Path.Combine(directory, StateFolder), options.StateIndexBytes, options.StateMemoryBytes, options.StateSegmentBytes, predatesLayouts, LogHoldsFrom);
            if (_manifest != manifest)
            {
                // The page is recorded only once the store has kept its layout: a checkpointed store
                // without a layout file under a manifest with the page is refused as damaged, and a
                // crash between the two writes must not leave that. The format is raised before
                // anything is written in it.
                _manifest.Replace(directory);
            }

            _matrix = new ConceptMatrix(manifest.Dimension, device, manifest.Metric, manifest.Precision);
            _checkpointTimeout = options.StateCheckpointTimeout ?? _store.UnhurriedCheckpointTime;
        }
        catch
        {
            // Open's own cleanup needs a whole collection; what was built so far holds files and memory.
            _store?.Dispose();
            _log.Dispose();
            throw;
        }

        _search = search;
        _closedForm = new RelationVectorEstimator(manifest.Dimension);
        _headScratch = new float[manifest.Dimension];
        _tailScratch = new float[manifest.Dimension];
    }

    /// <summary>The collection's name.</summary>
    public string Name => _manifest.Name;

    /// <summary>Vector dimension of concepts and relations.</summary>
    public int Dimension => _manifest.Dimension;

    internal string Directory { get; }

    /// <summary>Whether writes have reached the log since the last checkpoint.</summary>
    internal bool HasUncheckpointedWrites => _log.RetainedBytes > 0;

    /// <summary>Opens the collection in <paramref name="directory"/>, whose manifest the caller has read or just written.</summary>
    internal static Collection Open(
        string directory, CollectionManifest manifest, DatabaseOptions options, torch.Device device, VectorSearch search, ILogger logger,
        CancellationToken cancellationToken = default)
    {
        var collection = new Collection(directory, manifest, options, device, search, logger);
        try
        {
            collection.Recover(cancellationToken);
            return collection;
        }
        catch
        {
            collection.ReleaseResources();
            throw;
        }
    }

    /// <summary>The definition and current counts; NotFound once the collection is dropped.</summary>
    public Result<CollectionInfo> Describe() => Read<CollectionInfo>(
        () => new CollectionInfo(Name, Dimension, _manifest.Metric, _manifest.Precision, _concepts.Count, _relations.Count, _edges.Count)
        {
            Folder = Path.GetFileName(Directory),
        },
        whileStopped: true);

    /// <summary>
    /// Writes the state store's checkpoint and drops the log it covers. A collection stopped by a
    /// failed write is not checkpointed (FailedPrecondition): its store may lack what its log holds,
    /// or its log may hold a refused write, and reopening recovers it from that log. A checkpoint
    /// that does not reach disk whole, or does not finish within the timeout, is FailedPrecondition
    /// too: the previous checkpoint and the log are kept, so nothing is lost. One that timed out, or
    /// a failed write to the store's files, takes the store out of service until the database is
    /// reopened (later checkpoints fail at once), but writes go on: the log holds them.
    /// </summary>
    public async Task<Result<bool>> CheckpointAsync(CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            if (Unwritable() is { } unwritable)
            {
                return unwritable;
            }

            if (_store.OutOfService is { } outOfService)
            {
                return StoreOutOfService(outOfService);
            }

            // Holding the writer lock, with the store caught up, every committed entry has been
            // applied, so the store's state is exactly the log up to this address.
            try
            {
                if (await _store.AwaitAsync(_storeCatchUp) is { } notCaughtUp)
                {
                    return StoreOutOfService(notCaughtUp);
                }
            }
            catch (Exception exception)
            {
                // The last batch failed in the store after the write that logged it: the collection
                // stops as a failed write would stop it (its log still holds the batch).
                return Fail(exception);
            }

            long covered = _log.CommittedUntil;

            // A checkpoint and a compaction may use the free-disk reserve (it is kept for them) but
            // must fit in what is free: FASTER hangs on a page it could not write.
            if (DiskRoomFor(_store.CheckpointBytes, "a checkpoint", keepFree: 0) is { } noRoom)
            {
                Log.CheckpointSkipped(_logger, Name, noRoom.Message);
                return noRoom;
            }

            // Compaction cannot be cancelled part way, and neither can FASTER's checkpoint once
            // started (a cancelled one stays in progress and refuses the next), so a cancel is
            // honoured only before either begins.
            cancellationToken.ThrowIfCancellationRequested();
            _superseded.EndInterval(_store.TailAddress - _intervalStartTail > _store.MutableBytes);
            if (CompactionDue())
            {
                long copied = _store.LogBytes - _superseded.Bytes;
                if (DiskRoomFor(copied + _store.CheckpointBytes, "compacting the state store", keepFree: 0) is { } noRoomToCompact)
                {
                    Log.CheckpointSkipped(_logger, Name, noRoomToCompact.Message);
                }
                else
                {
                    long before = _store.LogBytes;
                    try
                    {
                        if (await _store.CompactAsync() is { } notCompacted)
                        {
                            return StoreOutOfService(notCompacted);
                        }
                    }
                    catch (InvalidDataException damage)
                    {
                        // Copying from the log would carry the damage on (or drop a record), and
                        // leaving it would grow the log until a restore; memory holds it whole.
                        Log.StoreRewrittenFromMemory(_logger, Name, damage.Message);
                        if (await _store.AwaitAsync(Task.Run(RewriteStoreFromMemory)) is { } notRewritten)
                        {
                            return StoreOutOfService(notRewritten);
                        }
                    }

                    Log.StateCompacted(_logger, Name, before, _store.LogBytes);
                    _superseded.Compacted();
                }
            }

            string? notDurable = await _store.CheckpointAsync(covered, _logSequence, _superseded.Bytes, _checkpointTimeout);

            // Even a checkpoint that failed folded the store's log over: what it holds is read-only.
            StartSupersededInterval();
            if (notDurable is not null)
            {
                if (_store.OutOfService is { } givenUp)
                {
                    return StoreOutOfService(givenUp);
                }

                Log.CheckpointNotDurable(_logger, Name, notDurable);
                return CheckpointFailed(notDurable);
            }

            if (_store.OutdatedCheckpointKept is { } kept)
            {
                Log.OutdatedCheckpointKept(_logger, Name, kept);
            }

            try
            {
                await _log.TruncateUntilAsync(covered);
            }
            catch (Exception exception)
            {
                // The checkpoint is durable; the log's truncation could not be committed, and the
                // log commits nothing more, so writes stop as after a failed append.
                return StopWrites(exception);
            }
            Log.CheckpointTaken(_logger, Name, covered);
            return true;
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>The error for a checkpoint that failed for <paramref name="why"/>; the log still holds every write.</summary>
    internal EngineError CheckpointFailed(string why) =>
        new(ErrorCode.FailedPrecondition, "collection", $"checkpoint of collection '{Name}' failed: {why}. Its log keeps every write, so none is lost");

    /// <summary>
    /// The error for a checkpoint refused because the state store is out of service (see
    /// <see cref="StateStore.OutOfService"/>), logged the first time. Writes go on: the log keeps
    /// them (it is no longer truncated), and the next open replays them.
    /// </summary>
    private EngineError StoreOutOfService(string why)
    {
        if (!_storeOutOfServiceLogged)
        {
            _storeOutOfServiceLogged = true;
            Log.StoreOutOfService(_logger, Name, why);
        }

        return CheckpointFailed($"its state store is out of service until the database is reopened (after the cause is fixed, e.g. disk space freed): {why}");
    }

    /// <summary>
    /// Whether the state store's log is at least half superseded records, and those fill at least
    /// one log file (disk comes back a file at a time). Compaction rewrites every live record, so
    /// waiting for half the log to be waste bounds the rewriting to about one copy per byte written;
    /// a log of inserts only is never compacted.
    /// </summary>
    private bool CompactionDue() =>
        _superseded.Bytes >= _store.Layout.SegmentBytes && 2 * _superseded.Bytes >= _store.LogBytes;

    /// <summary>After a checkpoint (or recovery) every stored record is read-only in the store's log.</summary>
    private void StartSupersededInterval()
    {
        _superseded.StartInterval(_concepts.IdLimit, _edges.IdLimit, _relations.Count, _ingestMarks.IdLimit);
        _intervalStartTail = _store.TailAddress;
    }

    /// <summary>Runs a planned write: validate and resolve, log durably, then apply.
    /// <paramref name="itemsField"/> names the input list a batch too large to log is refused for,
    /// and <paramref name="tooLarge"/> says what to do then (by default: split it).</summary>
    private async Task<Result<T>> WriteAsync<T>(Func<Result<Planned<T>>> plan, string itemsField, CancellationToken cancellationToken, string? tooLarge = null)
    {
        await _writer.WaitAsync(cancellationToken);
        List<Mutation>? batch = null;
        try
        {
            if (Unwritable() is { } unwritable)
            {
                return unwritable;
            }

            Result<Planned<T>> planned = plan();
            if (!planned.IsOk)
            {
                return planned.Error!;
            }

            batch = planned.Value.Batch;
            if (batch.Count > 0)
            {
                EntryBuffer buffer = _entryBuffers[(_logSequence + 1) & 1];
                ReadOnlyMemory<byte> entry = RecordCodec.EncodeBatch(_logSequence + 1, batch, buffer.Bytes, buffer.MutationBounds, out int largest, out long largestBytes);
                if (entry.Length > _log.MaxEntryBytes)
                {
                    return new EngineError(
                        ErrorCode.ResourceExhausted,
                        itemsField,
                        $"the write encodes to {entry.Length:N0} bytes; one write may hold at most {_log.MaxEntryBytes:N0}: "
                        + (tooLarge ?? $"split it (the concepts a write creates count too, each with its {Dimension}-float vector)"));
                }

                if (largestBytes > _store.MaxValueBytes)
                {
                    return OversizedRecord(batch[largest], largestBytes);
                }

                if (DiskRoomFor(entry.Length, "this write", _minFreeDiskBytes) is { } noRoom)
                {
                    return noRoom;
                }

                try
                {
                    // The store lags by one batch at most; if that batch failed there, this one
                    // is refused before it reaches the log. If the store went out of service
                    // instead, writes go on without it: the log holds them.
                    if (await _store.AwaitAsync(_storeCatchUp) is { } outOfService)
                    {
                        StoreOutOfService(outOfService);
                        if (!_storeCatchUp.IsCompleted)
                        {
                            // The abandoned store write may still read the last entry's buffer,
                            // which the batch after this one would encode into.
                            _entryBuffers[_logSequence & 1] = new EntryBuffer();
                        }
                    }
                }
                catch (Exception exception)
                {
                    return Fail(exception);
                }

                cancellationToken.ThrowIfCancellationRequested();

                // From here on the batch is committed: cancellation no longer applies.
                try
                {
                    await _log.AppendDurableAsync(entry);
                    _logSequence++;
                }
                catch (Exception exception)
                {
                    return StopWrites(exception);
                }

                try
                {
                    long sequence = _logSequence;
                    _storeCatchUp = Task.Run(() => ApplyToStore(entry.Span, buffer.MutationBounds, sequence), CancellationToken.None);
                    Apply(batch);
                }
                catch (Exception exception)
                {
                    return Fail(exception);
                }
            }

            return planned.Value.Outcome(this);
        }
        finally
        {
            // The planner reuses its batch (see PlanningBuffers): it keeps the capacity, not the
            // records, which would otherwise stay reachable until the next write.
            batch?.Clear();
            _writer.Release();
        }
    }

    /// <summary>Applies a durable batch to memory under the state lock; its store writes follow in the background.</summary>
    private void Apply(List<Mutation> batch)
    {
        _state.EnterWriteLock();
        try
        {
            ApplyToMemory(batch);
        }
        finally
        {
            _state.ExitWriteLock();
        }
    }

    /// <summary>
    /// Takes the collection out of service after a logged write failed to apply (in memory, or in
    /// the state store in the background): memory, the store and the log may then disagree. Every
    /// later call gets this error, no checkpoint can record the disagreement, and reopening the
    /// database rebuilds the collection from its last checkpoint and the committed log.
    /// </summary>
    private EngineError Fail(Exception cause)
    {
        if (_failure is null)
        {
            _failure = new EngineError(
                ErrorCode.FailedPrecondition,
                "collection",
                $"collection '{Name}' stopped after a failed write ({cause.GetType().Name}: {cause.Message}); reopen the database to recover it from its log");
            Log.CollectionFailed(_logger, Name, cause);
        }

        return _failure;
    }

    /// <summary>
    /// Refuses writes (and checkpoints) after a log append failed, a full disk most likely. Nothing
    /// of that write reached memory or the store, so reads go on serving exactly what was
    /// acknowledged. Writing on is not safe: the refused entry stays in the log's memory, and the
    /// next commit, of a write or of a checkpoint's truncation, could make it durable after it was
    /// refused. Reopening the database recovers the log to its last commit.
    /// </summary>
    private EngineError StopWrites(Exception cause)
    {
        if (_logFailure is null)
        {
            _logFailure = new EngineError(
                ErrorCode.FailedPrecondition,
                "collection",
                $"collection '{Name}' takes no writes after its log failed to write ({cause.GetType().Name}: {cause.Message}; {FreeDiskBytes(Directory):N0} bytes free on its disk). Nothing of that write was kept and reads go on; restart the server (reopen the database) to write again, once the cause is fixed");
            Log.CollectionStoppedWrites(_logger, Name, cause);
        }

        return _logFailure;
    }

    /// <summary>Why the collection cannot serve calls (dropped, or stopped by a failed write), or null.</summary>
    private EngineError? Unavailable() => Dropped() ?? _failure;

    /// <summary>NotFound once the collection is dropped (or its database closed), else null.</summary>
    private EngineError? Dropped() => _closed ? EngineError.NotFound("collection", $"collection '{Name}' was dropped") : null;

    /// <summary>Why the collection cannot take writes or checkpoints, or null.</summary>
    private EngineError? Unwritable() => Unavailable() ?? _logFailure;

    /// <summary>
    /// Refuses to write up to <paramref name="bytes"/> more when that would leave less than
    /// <paramref name="keepFree"/> free on the data folder's disk: a write keeps
    /// <see cref="DatabaseOptions.MinFreeDiskBytes"/> free, checkpoints may use that reserve. No
    /// check at all when the reserve is 0. One statfs call.
    /// </summary>
    private EngineError? DiskRoomFor(long bytes, string what, long keepFree)
    {
        if (_minFreeDiskBytes == 0)
        {
            return null;
        }

        long free = FreeDiskBytes(Directory);
        if (free - bytes >= keepFree)
        {
            return null;
        }

        string reserve = keepFree > 0 ? $" beside the {keepFree:N0} kept free (MinFreeDiskBytes)" : "";
        return new EngineError(
            ErrorCode.ResourceExhausted,
            "",
            $"the disk holding '{Directory}' has {free:N0} bytes free; {what} needs up to {bytes:N0}{reserve}. Nothing was written: free disk space and retry");
    }

    private static long FreeDiskBytes(string path) => new DriveInfo(path).AvailableFreeSpace;

    /// <summary>Replayed log entries whose state-store writes are handed over at once (see
    /// <see cref="ReplayToStore"/>), at most this many, or as many as reach
    /// <see cref="ReplayedBytesStoredAtOnce"/>: a hand-over per entry slowed the replay of a log of
    /// single-fact writes by half.</summary>
    private const int ReplayedEntriesStoredAtOnce = 256;

    private const int ReplayedBytesStoredAtOnce = 4 << 20;

    /// <summary>A replayed log entry, held for its state-store writes (see <see cref="ApplyToStore"/>).</summary>
    private readonly record struct ReplayedEntry(byte[] Entry, List<int> MutationBounds, long Sequence);

    /// <summary>
    /// Waits for the replayed entries' state-store writes under way (<paramref name="storing"/>),
    /// then starts those of <paramref name="entries"/> on the thread pool, which run while the
    /// next entries are applied to memory (as a batch's store writes run while it is applied in
    /// service); returns them. The waits are the writer's (<see cref="StateStore.AwaitAsync"/>): a
    /// page write that fails takes the store out of service, and FASTER then blocks the store
    /// write that needs room in memory forever, which hung the open. From then on the collection
    /// opens and runs as it does when that happens in service: the store is left behind, the log
    /// keeps every entry (no checkpoint truncates it), and the next open replays them. Abandoned
    /// writes keep reading their entries, so the caller starts a new list.
    /// </summary>
    private Task ReplayToStore(Task storing, List<ReplayedEntry> entries)
    {
        AwaitReplayedStores(storing);
        if (entries.Count == 0 || _store.OutOfService is not null)
        {
            return Task.CompletedTask;
        }

        return Task.Run(
            () =>
            {
                foreach ((byte[] entry, List<int> bounds, long sequence) in entries)
                {
                    ApplyToStore(entry, bounds, sequence);
                }
            },
            CancellationToken.None);
    }

    /// <summary>Waits for replayed entries' state-store writes (see <see cref="ReplayToStore"/>)
    /// unless the store goes out of service first.</summary>
    private void AwaitReplayedStores(Task storing)
    {
        if (_store.AwaitAsync(storing).GetAwaiter().GetResult() is { } outOfService)
        {
            StoreOutOfService(outOfService);
        }
    }

    /// <summary>
    /// Applies mutations to the in-memory indexes, the closed-form estimates and W. A batch whose
    /// applying reads no adjacency list (see <see cref="LinksApart"/>), as a bulk load's are, has its
    /// edges linked into their endpoints' lists on another core meanwhile: the lists of random
    /// concepts miss the cache at every fact, and were the largest part of applying such a batch.
    /// </summary>
    private void ApplyToMemory(List<Mutation> batch)
    {
        Dictionary<int, float[]> pendingRows = _pendingRows;
        pendingRows.Clear(); // after a write that failed part way
        Task? linking = LinksApart(batch) ? Task.Run(() => LinkEdges(batch)) : null;
        try
        {
            ApplyMutations(batch, pendingRows, linked: linking is null);
        }
        finally
        {
            // Before anything reads the lists; and after a failure too, as the task writes them.
            linking?.GetAwaiter().GetResult();
        }

        SetMatrixRows(pendingRows);
        // Kept for its capacity, not its rows: they would hold the batch's vectors until the next write.
        pendingRows.Clear();
    }

    /// <summary>The fewest edges a batch links on another core: handing fewer over costs more than it
    /// saves, and would take a second pool thread for every small write.</summary>
    private const int MinEdgesLinkedApart = 1024;

    /// <summary>
    /// Whether <paramref name="batch"/> has its edges linked on another core: it has at least
    /// <see cref="MinEdgesLinkedApart"/>, and applying it reads no adjacency list, as it deletes
    /// nothing and puts only edges and concepts not stored yet, each once (ids rising, as new ids are
    /// handed out). Replacing a stored edge unlinks it, and a stored concept's new vector moves the
    /// closed-form contributions of its edges, both read from the lists.
    /// </summary>
    private bool LinksApart(List<Mutation> batch)
    {
        int lastEdge = -1, lastConcept = -1, edges = 0;
        foreach (Mutation mutation in batch)
        {
            switch (mutation)
            {
                case Mutation.PutEdge { Edge.Id: var id } when id > lastEdge && !_edges.IsLive(id):
                    lastEdge = id;
                    edges++;
                    break;
                case Mutation.PutConcept { Concept.Id: var id } when id > lastConcept && !_concepts.IsLive(id):
                    lastConcept = id;
                    break;
                case Mutation.PutRelation or Mutation.PutIngestMark or Mutation.DeleteIngestMark:
                    break;
                default:
                    return false;
            }
        }

        return edges >= MinEdgesLinkedApart;
    }

    /// <summary>Links a batch's edges into their endpoints' adjacency lists (see <see cref="LinksApart"/>).</summary>
    private void LinkEdges(List<Mutation> batch)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            PrefetchAhead(batch, i, lists: true, rows: false);
            if (batch[i] is Mutation.PutEdge { Edge: var edge })
            {
                _edges.Link(edge);
            }
        }
    }

    /// <summary>Applies each mutation in order; edges are linked into the adjacency lists unless
    /// <paramref name="linked"/> is false (<see cref="LinkEdges"/> links them).</summary>
    private void ApplyMutations(List<Mutation> batch, Dictionary<int, float[]> pendingRows, bool linked)
    {
        for (int i = 0; i < batch.Count; i++)
        {
            PrefetchAhead(batch, i, lists: linked, rows: true);
            Mutation mutation = batch[i];
            Supersede(mutation);
            switch (mutation)
            {
                case Mutation.PutConcept { Concept: var concept }:
                    if (_concepts.IsLive(concept.Id))
                    {
                        MoveClosedFormContributions(concept.Id, concept.Vector, pendingRows);
                    }

                    _concepts.Put(concept);
                    pendingRows[concept.Id] = concept.Vector;
                    break;
                case Mutation.DeleteConcept { Id: var id }:
                    pendingRows.Remove(id);
                    _concepts.Delete(id);
                    _matrix.Remove(id);
                    break;
                case Mutation.PutRelation { Relation: var relation }:
                    // A changed inverse is written with its old and new partners, each forgetting its own.
                    _relations.Put(relation);
                    ForgetRecallMemory(relation.Id);
                    break;
                case Mutation.PutEdge { Edge: var edge }:
                    if (_edges.IsLive(edge.Id))
                    {
                        _relations.AddFacts(_edges.Relation(edge.Id), -1);
                        ForgetRecallMemory(_edges.Relation(edge.Id));
                        CountClosedForm(edge.Id, -1, pendingRows);
                    }

                    if (linked)
                    {
                        _edges.Put(edge);
                    }
                    else
                    {
                        _edges.PutUnlinked(edge);
                    }

                    _relations.AddFacts(edge.Relation, 1);
                    ForgetRecallMemory(edge.Relation);
                    CountClosedForm(edge.Id, +1, pendingRows);
                    break;
                case Mutation.DeleteEdge { Id: var id }:
                    if (_edges.IsLive(id))
                    {
                        _relations.AddFacts(_edges.Relation(id), -1);
                        ForgetRecallMemory(_edges.Relation(id));
                        CountClosedForm(id, -1, pendingRows);
                        _edges.Delete(id);
                    }

                    break;
                case Mutation.PutIngestMark { Mark: var mark }:
                    _ingestMarks.Put(mark);
                    break;
                case Mutation.DeleteIngestMark { Id: var id }:
                    _ingestMarks.Delete(id);
                    break;
                default:
                    throw new InvalidOperationException($"unknown mutation {mutation.GetType().Name}");
            }
        }
    }

    /// <summary>How many mutations ahead of its edge's insertion an adjacency list, W's rows and the
    /// edge filter's word are fetched (see <see cref="AdjacencyLists.Prefetch"/>): those of a batch's
    /// facts are scattered over memory, and waiting for each in turn was most of applying a batch of
    /// new facts.</summary>
    private const int PrefetchDistance = 8;

    /// <summary>Starts loading what the edges a few mutations after the <paramref name="i"/>-th will
    /// touch: their adjacency lists when <paramref name="lists"/> (the references two steps ahead,
    /// the lists one), their filter words and W's rows when <paramref name="rows"/>.</summary>
    private void PrefetchAhead(List<Mutation> batch, int i, bool lists, bool rows)
    {
        if (i + (2 * PrefetchDistance) < batch.Count && batch[i + (2 * PrefetchDistance)] is Mutation.PutEdge { Edge: var later })
        {
            if (lists)
            {
                _edges.PrefetchListsOf(later.Head, later.Tail, references: true);
            }

            if (rows)
            {
                _edges.PrefetchFilterOf(later.Head, later.Relation, later.Tail);
            }
        }

        if (i + PrefetchDistance < batch.Count && batch[i + PrefetchDistance] is Mutation.PutEdge { Edge: var next })
        {
            if (lists)
            {
                _edges.PrefetchListsOf(next.Head, next.Tail, references: false);
            }

            if (rows)
            {
                // The rows the relation's closed-form estimate reads (new concepts' are pending, at hand).
                _matrix.Prefetch(next.Head);
                _matrix.Prefetch(next.Tail);
            }
        }
    }

    /// <summary>
    /// Counts the stored record a mutation replaces or deletes (and a delete's tombstone) as
    /// superseded. Sizes are estimated from the kind, as the old record's exact size is not kept.
    /// Called before the mutation is applied to memory, which still shows the old state.
    /// </summary>
    private void Supersede(Mutation mutation)
    {
        // A FASTER record: header, key and value lengths and bytes, 8-byte aligned; names and
        // metadata are rarely long beside a vector, so a fixed allowance covers them.
        const int Record = 64;
        long vectorRecord = Record + (4L * Dimension);
        switch (mutation)
        {
            case Mutation.PutConcept { Concept: var concept } when _concepts.IsLive(concept.Id):
                _superseded.Supersede(RecordKind.Concept, concept.Id, vectorRecord);
                break;
            case Mutation.DeleteConcept { Id: var id } when _concepts.IsLive(id):
                _superseded.Supersede(RecordKind.Concept, id, vectorRecord + Record);
                break;
            case Mutation.PutRelation { Relation: var relation }:
                _superseded.Supersede(RecordKind.Relation, relation.Id, vectorRecord);
                break;
            case Mutation.PutEdge { Edge: var edge } when _edges.IsLive(edge.Id):
                _superseded.Supersede(RecordKind.Edge, edge.Id, Record);
                break;
            case Mutation.DeleteEdge { Id: var id } when _edges.IsLive(id):
                _superseded.Supersede(RecordKind.Edge, id, 2 * Record);
                break;
            case Mutation.PutIngestMark { Mark: var mark }:
                _superseded.Supersede(RecordKind.IngestMark, mark.Id, Record);
                break;
            case Mutation.DeleteIngestMark { Id: var id }:
                _superseded.Supersede(RecordKind.IngestMark, id, 2 * Record);
                break;
        }
    }

    /// <summary>Applies a batch to the state store, the copy a checkpoint makes durable, from its
    /// log entry, which holds each record as the store stores it (see <see cref="RecordCodec"/>),
    /// rather than encoding them again. <paramref name="mutationBounds"/> says where each mutation
    /// starts in the entry and, last, where the final one ends; <paramref name="sequence"/> is the
    /// entry's.</summary>
    private void ApplyToStore(ReadOnlySpan<byte> entry, List<int> mutationBounds, long sequence)
    {
        using StateStore.Writer store = _store.BeginWrites();
        WriteToStore(store, entry, mutationBounds, sequence);
    }

    /// <summary>
    /// Writes every live record again from memory, and drops the store's log before them: memory
    /// was loaded from checked records and the log, and has followed every write since, so it holds
    /// what the store should (W's rows are float32, exact), where a compaction would copy from a log
    /// that holds a damaged record. Callers hold the writer lock with the store caught up.
    /// </summary>
    private void RewriteStoreFromMemory() => _store.ReplaceAll(store =>
    {
        // Encoded as log entries are, some at a time, so the store takes each record as it takes a logged one.
        using var buffer = new MemoryStream();
        var bounds = new List<int>();
        using IEnumerator<Mutation> live = LiveRecords().GetEnumerator();
        var records = new List<Mutation>(RewriteChunk);
        while (ReadForRewrite(() =>
        {
            records.Clear();
            while (records.Count < RewriteChunk && live.MoveNext())
            {
                records.Add(live.Current);
            }

            return records.Count > 0;
        }))
        {
            ReadOnlyMemory<byte> entry = RecordCodec.EncodeBatch(0, records, buffer, bounds, out _, out _);
            WriteToStore(store, entry.Span, bounds, sequence: 0);
        }

        // Each mark keeps the sequence of the entry that wrote it, which no entry here has.
        IngestMark[] marks = [];
        ReadForRewrite(() =>
        {
            marks = [.. _ingestMarks.All];
            return true;
        });
        foreach (IngestMark mark in marks)
        {
            store.Put(RecordKind.IngestMark, RecordCodec.EncodeStored(mark));
        }
    });

    /// <summary>Records <see cref="RewriteStoreFromMemory"/> reads from memory at a time.</summary>
    private const int RewriteChunk = 4096;

    /// <summary>
    /// Runs <paramref name="read"/> (a read of memory for <see cref="RewriteStoreFromMemory"/>)
    /// under the read lock, unless the rewrite has been given up on; false then, else what it
    /// returns. The rewrite is given up on when the store goes out of service (its writes can then
    /// wait for ever), and the writer lock is released while it still runs: writes may then grow
    /// the matrix, freeing the tensor it read, or a close free the matrix, so it reads a chunk at a
    /// time under the lock and stops once given up on, rather than read memory under neither lock.
    /// </summary>
    private bool ReadForRewrite(Func<bool> read)
    {
        _state.EnterReadLock();
        try
        {
            return _store.OutOfService is null && !_closed && read();
        }
        finally
        {
            _state.ExitReadLock();
        }
    }

    /// <summary>Every live concept, relation and fact, as the mutation that writes it.</summary>
    private IEnumerable<Mutation> LiveRecords()
    {
        float[] row = new float[Dimension];
        for (int id = 0; id < _concepts.IdLimit; id++)
        {
            if (_concepts.IsLive(id))
            {
                yield return new Mutation.PutConcept(new ConceptRecord(id, _concepts.Name(id), _matrix.RowView(id, row).ToArray(), _concepts.Metadata(id)));
            }
        }

        foreach (RelationRecord relation in _relations.All)
        {
            yield return new Mutation.PutRelation(relation);
        }

        for (int id = 0; id < _edges.IdLimit; id++)
        {
            if (_edges.IsLive(id))
            {
                yield return new Mutation.PutEdge(new EdgeRecord(id, _edges.Head(id), _edges.Relation(id), _edges.Tail(id), _edges.Weight(id), _edges.Payload(id)));
            }
        }
    }

    /// <summary>Applies the mutations of an entry (see <see cref="RecordCodec.EncodeBatch"/>) to the
    /// store, each record as the entry holds it but the ingest marks the entry wrote, which the
    /// store keeps with the entry's <paramref name="sequence"/> (their order of recency).</summary>
    private static void WriteToStore(StateStore.Writer store, ReadOnlySpan<byte> entry, List<int> mutationBounds, long sequence)
    {
        for (int i = 0; i + 1 < mutationBounds.Count; i++)
        {
            StoredMutation mutation = RecordCodec.StoredMutation(entry[mutationBounds[i]..mutationBounds[i + 1]]);
            if (mutation.IsDelete)
            {
                // Deleting a record the store no longer holds only adds a tombstone.
                store.Delete(mutation.Kind, mutation.Id);
            }
            else if (!mutation.RecordAsStored)
            {
                store.Put(RecordKind.IngestMark, RecordCodec.EncodeStored(RecordCodec.DecodeIngestMark(mutation.Record) with { Written = sequence }));
            }
            else
            {
                store.Put(mutation.Kind, mutation.Record);
            }
        }
    }

    /// <summary>
    /// The error for a record too large for a state-store page. Such a record would be logged and
    /// then fail to apply, and fail again at every replay, so the collection could never open
    /// again: it is refused before it reaches the log.
    /// </summary>
    private EngineError OversizedRecord(Mutation mutation, long bytes)
    {
        (string field, string what) = mutation switch
        {
            Mutation.PutConcept { Concept: var concept } => ("metadata", $"concept '{concept.Name}'"),
            Mutation.PutEdge => ("payload", "a fact"),
            Mutation.PutRelation { Relation: var relation } => ("compositions", $"relation '{relation.Name}'"),
            _ => ("batch", "a record"),
        };
        return new EngineError(
            ErrorCode.ResourceExhausted,
            field,
            $"{what} encodes to {bytes} bytes; one record may hold at most {_store.MaxValueBytes} (a page of the state store)");
    }

    /// <summary>Adds (+1) or removes (−1) an edge's <c>v(tail) − v(head)</c> in its relation's
    /// closed-form estimate, reading vectors this batch has not yet written to the matrix from
    /// <paramref name="pendingRows"/>.</summary>
    private void CountClosedForm(int edge, int sign, Dictionary<int, float[]> pendingRows)
    {
        ReadOnlySpan<float> head = VectorOf(_edges.Head(edge), _headScratch, pendingRows);
        ReadOnlySpan<float> tail = VectorOf(_edges.Tail(edge), _tailScratch, pendingRows);
        if (sign > 0)
        {
            _closedForm.Add(_edges.Relation(edge), head, tail);
        }
        else
        {
            _closedForm.Remove(_edges.Relation(edge), head, tail);
        }
    }

    /// <summary>A concept's vector changes: its edges' contributions move from the old vector to the new.</summary>
    private void MoveClosedFormContributions(int concept, float[] newVector, Dictionary<int, float[]> pendingRows)
    {
        ReadOnlySpan<int> incident = _edges.EdgesOf(concept);
        if (incident.IsEmpty)
        {
            return;
        }

        foreach (int edge in incident)
        {
            CountClosedForm(edge, -1, pendingRows);
        }

        // The caller records the new vector as pending right after, so it may be set here already.
        pendingRows[concept] = newVector;
        foreach (int edge in incident)
        {
            CountClosedForm(edge, +1, pendingRows);
        }
    }

    /// <summary>A concept's current vector: pending in this batch, or W's row (read in place on the
    /// host, copied into <paramref name="scratch"/> elsewhere). Valid until W is next written.</summary>
    /// <remarks>A bulk load's batches mostly name stored concepts only, so nothing is pending; the
    /// dictionary keeps the capacity of the batch that created the most, and probing its buckets at
    /// random for each end of each new fact took 2.3 % of the server's time in a 2 M-fact load.</remarks>
    private ReadOnlySpan<float> VectorOf(int concept, float[] scratch, Dictionary<int, float[]> pendingRows) =>
        pendingRows.Count > 0 && pendingRows.TryGetValue(concept, out float[]? pending) ? pending : _matrix.RowView(concept, scratch);

    private void SetMatrixRows(Dictionary<int, float[]> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        int[] ids = [.. rows.Keys];
        int perChunk = Math.Max(1, StagedRowFloats / Dimension);
        float[] staged = new float[Math.Min(ids.Length, perChunk) * Dimension];
        for (int start = 0; start < ids.Length; start += perChunk)
        {
            int count = Math.Min(perChunk, ids.Length - start);
            for (int i = 0; i < count; i++)
            {
                rows[ids[start + i]].CopyTo(staged, i * Dimension);
            }

            _matrix.SetRows(ids.AsSpan(start, count), staged.AsSpan(0, count * Dimension));
        }
    }

    /// <summary>
    /// How many floats of new rows W is given at a time. A batch's new rows are megabytes (a batch of
    /// 10,000 facts can create 20,000 concepts), and staged in one array they were allocated on the
    /// large-object heap every batch, where allocations set off full collections; in chunks of 64 KB
    /// they stay below it and nothing is kept between batches.
    /// </summary>
    private const int StagedRowFloats = 16 * 1024;

    /// <summary>Rebuilds memory from the last checkpoint, then replays the log after it.</summary>
    private void Recover(CancellationToken cancellationToken)
    {
        CheckRecoveredTogether();
        var relations = new List<RelationRecord>();
        var pendingRows = new Dictionary<int, float[]>();
        long read = 0;
        _store.ForEach((kind, id, bytes) =>
        {
            if (++read % 65_536 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            switch (kind)
            {
                case RecordKind.Concept:
                    ConceptRecord concept = RecordCodec.DecodeConcept(bytes);
                    _concepts.Put(concept);
                    pendingRows[concept.Id] = concept.Vector;
                    if (pendingRows.Count >= 65_536)
                    {
                        SetMatrixRows(pendingRows);
                        pendingRows.Clear();
                    }

                    break;
                case RecordKind.Relation:
                    relations.Add(RecordCodec.DecodeRelation(bytes));
                    break;
                case RecordKind.Edge:
                    _edges.Put(RecordCodec.DecodeEdge(bytes));
                    break;
                case RecordKind.IngestMark when id < 0:
                    // No session's: versions before marks could be deleted (DeleteIngestMark) held
                    // a placeholder for each id missing below the highest, and their rewrite from
                    // memory stored it, under id -1, when they read a store whose marks this
                    // version had deleted. Taken for a mark, it made the collection fail to open.
                    break;
                case RecordKind.IngestMark:
                    _ingestMarks.Put(RecordCodec.DecodeIngestMark(bytes));
                    break;
                default:
                    throw new InvalidDataException($"unknown record kind {(byte)kind} (id {id}) in the state store of '{Name}'");
            }
        });
        SetMatrixRows(pendingRows);
        foreach (RelationRecord relation in relations.OrderBy(relation => relation.Id))
        {
            _relations.Put(relation);
        }

        var noPendingRows = new Dictionary<int, float[]>();
        for (int edge = 0; edge < _edges.IdLimit; edge++)
        {
            if (_edges.IsLive(edge))
            {
                _relations.AddFacts(_edges.Relation(edge), 1);
                CountClosedForm(edge, +1, noPendingRows);
            }
        }

        // Replayed writes add what they supersede to the checkpoint's estimate.
        _superseded = new SupersededRecords(_store.RecoveredSupersededBytes);
        StartSupersededInterval();
        int replayed = ReplayLog(cancellationToken);
        if (_store is { PassedOverCheckpoint: { } incomplete, PassedOverCheckpointFolder: { } setAside })
        {
            if (_store.RecoveredCheckpoint)
            {
                Log.IncompleteCheckpointPassedOver(_logger, Name, incomplete, _store.RecoveredLogAddress, setAside);
            }
            else
            {
                Log.IncompleteOnlyCheckpointPassedOver(_logger, Name, incomplete, setAside);
            }
        }

        Log.CollectionRecovered(_logger, Name, _concepts.Count, _edges.Count, replayed);
    }

    /// <summary>
    /// Applies the log's committed entries after the recovered checkpoint, and checks that they are
    /// all there: numbered one after another from the checkpoint's last, and reaching the committed
    /// end. The log's reader takes a zeroed stretch for page padding and skips it, and a log file
    /// cut short reads as a shorter log, so without these checks a damaged log would open as an
    /// older collection. Entries written before they were numbered are checked for reaching the end
    /// only. Returns how many entries were applied.
    /// </summary>
    private int ReplayLog(CancellationToken cancellationToken)
    {
        long? next = _store.RecoveredCheckpoint ? _store.RecoveredLogSequence + 1 : 1;
        long reached = Math.Max(_store.RecoveredLogAddress, _log.BeginAddress);
        int replayed = 0;
        var unstored = new List<ReplayedEntry>();
        long unstoredBytes = 0;
        Task storing = Task.CompletedTask;
        try
        {
            foreach ((byte[] entry, long address, long nextAddress) in _log.ReadCommitted(_store.RecoveredLogAddress))
            {
                cancellationToken.ThrowIfCancellationRequested();
                LoggedBatch batch;
                try
                {
                    batch = RecordCodec.DecodeBatch(entry);
                }
                catch (Exception exception) when (IsUnreadableEntry(exception))
                {
                    throw DamagedLog($"its entry at address {address} cannot be read ({exception.Message})", exception);
                }

                if (batch.Sequence is long sequence && next is long expected && sequence != expected)
                {
                    throw DamagedLog($"its entry at address {address} is batch {sequence}, but batch {expected} comes next, so batches are missing before it");
                }

                ApplyToMemory(batch.Mutations);
                unstored.Add(new ReplayedEntry(entry, batch.MutationBounds, batch.Sequence ?? 0));
                unstoredBytes += entry.Length;
                if (unstored.Count == ReplayedEntriesStoredAtOnce || unstoredBytes >= ReplayedBytesStoredAtOnce)
                {
                    storing = ReplayToStore(storing, unstored);
                    unstored = [];
                    unstoredBytes = 0;
                }

                next = batch.Sequence + 1;
                reached = nextAddress;
                replayed++;
            }

            AwaitReplayedStores(ReplayToStore(storing, unstored));
        }
        catch
        {
            // The failed open disposes the store, which its writes must not outlive.
            ((Task)_store.AwaitAsync(storing)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing).GetAwaiter().GetResult();
            throw;
        }

        if (reached < _log.CommittedUntil)
        {
            throw DamagedLog($"its entries end at address {reached}, but it was committed up to address {_log.CommittedUntil}");
        }

        CheckNoCommitLost(next);
        _logSequence = next - 1 ?? 0;
        return replayed;
    }

    /// <summary>
    /// Refuses a log whose files hold more entries past its committed end than a crash leaves
    /// there. The writer waits for each entry's commit record before it appends the next, so a
    /// crash leaves at most the entry being written past the last record; more mean the records
    /// that covered them were lost (deleted, or replaced by older ones), and the log would open
    /// without them, its next write overwriting them. Only checksummed entries numbered on from
    /// <paramref name="next"/> count: what a cut-short entry left behind, partly overwritten since,
    /// is neither. Entries of the first format carry neither and are not counted.
    /// </summary>
    private void CheckNoCommitLost(long? next)
    {
        const int InFlightEntries = 1;
        var past = new List<(long Sequence, long Address)>();
        foreach ((byte[] entry, long address) in _log.ReadPastCommitted())
        {
            // Only the header is read: leftover bytes may look like an entry of the first format,
            // which has no checksum, and decoding them threw what no catch expected (a negative
            // count, a length near 2³¹), so one crash's leftovers made the collection unopenable.
            long? sequence = RecordCodec.ChecksummedSequence(entry);
            if (sequence is null || (next is not null && sequence != next))
            {
                break;
            }

            past.Add((sequence.Value, address));
            next = sequence + 1;
            if (past.Count > InFlightEntries)
            {
                string commits = _log.HasCommitRecord ? $"past its last commit record (up to address {_log.CommittedUntil})" : "and no commit record";
                throw DamagedLog(
                    $"it holds whole, checksummed batches {past[0].Sequence} and {sequence} (and maybe more) from address {past[0].Address} on, {commits}. "
                    + "A crash leaves at most the one batch being written past the last commit record, so the records that covered these were lost "
                    + $"(deleted, or replaced by older ones, in {Path.Combine(Directory, LogFolder, "log-commits")}); opening it would drop those batches, and the next write would overwrite them");
            }
        }
    }

    /// <summary>Whether decoding a log entry failed on what the entry holds.</summary>
    private static bool IsUnreadableEntry(Exception exception) =>
        exception is InvalidDataException or EndOfStreamException or ArgumentException or FormatException;

    private InvalidDataException DamagedLog(string problem, Exception? cause = null) =>
        new($"the write-ahead log of collection '{Name}' is damaged: {problem}. Its files under {Path.Combine(Directory, LogFolder)} are left as they are", cause);

    /// <summary>
    /// Refuses a state store and log that do not fit together. FASTER catches its own recovery
    /// errors (an unreadable checkpoint or commit file, an I/O error) and opens empty; replaying then
    /// would rebuild only part of the collection and report success, and the next checkpoint would
    /// make the loss permanent. The log is truncated only up to what a durable checkpoint covers, so
    /// a recovered checkpoint must cover an address the log still holds, and without one the log
    /// must never have been truncated.
    /// </summary>
    private void CheckRecoveredTogether()
    {
        long covered = _store.RecoveredLogAddress;
        string? problem = _store.RecoveredCheckpoint
            ? !LogHoldsFrom(covered)
                ? $"its state checkpoint covers the log up to address {covered}, but the log holds only [{_log.BeginAddress}, {_log.CommittedUntil})"
                : null
            : _log.BeginAddress > WriteAheadLog.FirstAddress
                ? $"no state checkpoint could be recovered, but the log was truncated to address {_log.BeginAddress} after one"
                : null;
        if (problem is not null)
        {
            throw new InvalidDataException(
                $"collection '{Name}' cannot be recovered: {problem}. Opening it would lose the writes in between; its files under {Directory} are left as they are");
        }
    }

    /// <summary>Whether the log holds every committed entry from <paramref name="address"/> on (0:
    /// from its first): it was not truncated past it, and was committed up to it.</summary>
    private bool LogHoldsFrom(long address) =>
        Math.Max(address, WriteAheadLog.FirstAddress) >= _log.BeginAddress && address <= _log.CommittedUntil;

    /// <summary>
    /// Stops accepting work; waits for the write in progress and for readers to leave. The wait for
    /// the state store's work (the close's checkpoint and its compaction, the last batch) is
    /// bounded, as the store holds nothing the log does not: after the checkpoint timeout and the
    /// time to rewrite the store's log on a slow disk, the store is taken out of service (see
    /// <see cref="StateStore.OutOfService"/>), which ends every wait for its work, and the next
    /// open replays the log. A failed write ends those waits at once; this bounds one that neither
    /// completes nor fails.
    /// </summary>
    internal async Task CloseAsync(bool checkpoint)
    {
        Task settled = SettleAsync(checkpoint);
        TimeSpan bound = _checkpointTimeout + StateStore.OnSlowDisk(_store.LogBytes);
        if (await Task.WhenAny(settled, Task.Delay(bound)) != settled)
        {
            _store.TakeOutOfService($"its work did not finish within {bound} of the collection's close");
            await settled;
        }

        _state.EnterWriteLock();
        _closed = true;
        _state.ExitWriteLock();
        _writer.Release();
        ReleaseResources();
    }

    /// <summary>Checkpoints (when asked and able), then takes the writer lock once the write in
    /// progress is done and the store's last batch has landed or been given up on.</summary>
    private async Task SettleAsync(bool checkpoint)
    {
        // A store out of service takes no checkpoint: its log is replayed at the next open.
        if (checkpoint && Unwritable() is null && _store.OutOfService is null)
        {
            try
            {
                await CheckpointAsync();
            }
            catch (Exception exception)
            {
                // A close must release the collection's files whatever happens; the log still holds
                // every acknowledged write, so a missed checkpoint costs only replay time at the next open.
                Log.CloseCheckpointFailed(_logger, exception, Name);
            }
        }

        await _writer.WaitAsync();
        // The store is disposed next; its last batch must have landed or been given up on (a
        // failure no longer matters: the log holds the batch, and without a checkpoint it is
        // replayed at the next open).
        await ((Task)_store.AwaitAsync(_storeCatchUp)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private void ReleaseResources()
    {
        _closed = true;
        foreach (RecallMemory memory in _recallMemories.Values)
        {
            memory.Dispose();
        }

        _recallMemories.Clear();
        _matrix.Dispose();
        _store.Dispose();
        _log.Dispose();
        foreach (EntryBuffer buffer in _entryBuffers)
        {
            buffer.Bytes.Dispose();
        }
    }

    /// <summary>A log entry's bytes and its mutations' bounds in them (see <see cref="RecordCodec.EncodeBatch"/>).</summary>
    private sealed class EntryBuffer
    {
        public MemoryStream Bytes { get; } = new();

        public List<int> MutationBounds { get; } = [];
    }

    /// <summary>A resolved write: the mutations to log and apply, and the outcome to report after.</summary>
    private sealed record Planned<T>(List<Mutation> Batch, Func<Collection, T> Outcome);
}
