using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The collection's materialized state in a FASTER key-value store: one record per concept,
/// relation and edge, keyed by kind and id. Writes land in memory and reach disk with a
/// checkpoint; the checkpoint carries, as its commit cookie, the write-ahead-log address it covers,
/// so recovery knows where replay starts, the caller's estimate of the superseded bytes the log
/// holds, so that estimate survives a restart, and the sequence number of the last log entry it
/// covers, so replay can tell whether the entries after it are all there.
/// </summary>
/// <remarks>
/// <para>
/// FASTER's log is append-only: an update or delete leaves the old record behind. <see cref="Compact"/>
/// copies the live records of the log's immutable part to its tail and moves the begin address past
/// them; the next checkpoint, once read back whole, deletes the log segments wholly below it (FASTER
/// would delete them before knowing; see <see cref="GuardedLogDevice"/>). Until then the previous
/// checkpoint still has every record it needs, so a crash or a failed checkpoint in between loses
/// nothing.
/// </para>
/// <para>
/// A session is opened per write batch rather than held, because FASTER's checkpoint state machine
/// waits for every open session to make progress; with none open, checkpoints complete on their own.
/// Callers serialize writes (the collection's writer lock).
/// </para>
/// <para>
/// FASTER does not make a checkpoint safe on its own (FASTER 2.6.5): its checkpoint manager ignores
/// the errors of its metadata writes (<c>DeviceLogCommitCheckpointManager.IOCallback</c> only logs
/// them), the index snapshot's completion ignores its write errors
/// (<c>FasterBase.AsyncPageFlushCallback</c>), and a data page whose flush failed never counts as
/// flushed (<c>AllocatorBase.AsyncFlushPageCallback</c>), so a fold-over checkpoint waits for it
/// forever. So this store deletes no checkpoint itself until it has read the new one back
/// (<see cref="CheckpointAsync"/>), and gives up waiting on one that does not finish.
/// </para>
/// </remarks>
internal sealed class StateStore : IDisposable
{
    /// <summary>FASTER's log files in the store's folder, one per segment: <c>hlog.log.N</c>
    /// (FasterKVSettings' default name).</summary>
    private const string LogFileName = "hlog.log";

    /// <summary>The share of the in-memory log that is mutable (FASTER's default, stated here
    /// because the compaction estimate depends on it).</summary>
    private const double MutableFraction = 0.9;

    /// <summary>Where FASTER keeps checkpoints under the store's folder (its default, so stores
    /// written before this store named it open unchanged).</summary>
    private const string CheckpointFolder = "checkpoints";

    /// <summary>Where, under the checkpoint folder, an incomplete checkpoint recovery passed over is
    /// set aside (see <see cref="SetAsidePassedOverCheckpoint"/>).</summary>
    private const string IncompleteFolder = "incomplete";

    /// <summary>FASTER's file for a named checkpoint device: the device's first (only) segment.</summary>
    private const string FirstSegmentSuffix = ".0";

    /// <summary>The slowest disk the store's work is waited for (see <see cref="OnSlowDisk"/>).</summary>
    private const long SlowDiskBytesPerSecond = 1L << 20;

    /// <summary>The size of one of FASTER's hash buckets (eight 8-byte entries), in the index and
    /// among its overflow buckets alike.</summary>
    private const int HashBucketBytes = 64;

    private readonly string _directory;
    private readonly string _checkpointDirectory;
    private readonly DefaultCheckpointNamingScheme _checkpointNames;
    private readonly OpenCheckedDeviceFactory _checkpointFiles;
    private readonly DeviceLogCommitCheckpointManager _checkpoints;
    private readonly FasterKVSettings<SpanByte, SpanByte> _settings;
    private readonly GuardedLogDevice _logFiles;
    private readonly FasterKV<SpanByte, SpanByte> _store;

    /// <summary>Completed, with why, once the store is out of service; see <see cref="OutOfService"/>.</summary>
    private readonly TaskCompletionSource<string> _outOfService = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The token of the checkpoint <see cref="PassedOverCheckpoint"/> describes.</summary>
    private Guid _passedOver;

    /// <summary>Opens (recovering the latest checkpoint) or creates the store in a folder, with the
    /// layout it was created with (see <see cref="StateLayout"/>; only a store that
    /// <paramref name="mayPredateLayouts"/> may have been written without one); its memory is raised
    /// to four pages if <paramref name="memoryBytes"/> is less. <paramref name="logReplaysFrom"/>
    /// says whether the write-ahead log holds every entry from an address on (0: from its first
    /// entry): only then may an older checkpoint be recovered in place of an incomplete newest one,
    /// or the store start empty in place of an incomplete only one (see
    /// <see cref="PassedOverCheckpoint"/>); without it the store refuses to open.</summary>
    public StateStore(string directory, long indexBytes, long memoryBytes, long segmentBytes, bool mayPredateLayouts = false, Func<long, bool>? logReplaysFrom = null)
        : this(directory, indexBytes, memoryBytes, segmentBytes, new LocalStorageNamedDeviceFactory(), mayPredateLayouts, logReplaysFrom)
    {
    }

    /// <summary>Opens the store with checkpoint files made by <paramref name="checkpointDevices"/>
    /// (tests route some of them to failing devices); a store that starts over orders its keys
    /// unless <paramref name="orderedKeys"/> is false (see <see cref="StateLayout.Resolve"/>).</summary>
    internal StateStore(
        string directory,
        long indexBytes,
        long memoryBytes,
        long segmentBytes,
        INamedDeviceFactory checkpointDevices,
        bool mayPredateLayouts = false,
        Func<long, bool>? logReplaysFrom = null,
        bool orderedKeys = true)
    {
        Directory.CreateDirectory(directory);
        _directory = directory;
        _checkpointDirectory = Path.Combine(directory, CheckpointFolder);
        _checkpointNames = new DefaultCheckpointNamingScheme(_checkpointDirectory);
        RefuseFoldersInPlaceOfFiles();
        Layout = StateLayout.Resolve(directory, memoryBytes, segmentBytes, mayPredateLayouts, orderedKeys);
        // Outdated checkpoints are removed here, once a newer one has been read back: FASTER's own
        // removal deletes the previous checkpoint as soon as it has issued the new one's writes.
        _checkpointFiles = new OpenCheckedDeviceFactory(checkpointDevices);
        _checkpoints = new DeviceLogCommitCheckpointManager(_checkpointFiles, _checkpointNames, removeOutdated: false);
        RecoveryChoice? recovering;
        try
        {
            recovering = ChooseCheckpoint(logReplaysFrom);
            if (recovering is null && PassedOverCheckpoint is not null)
            {
                // Starting over: the log files go with the checkpoint, before the empty store
                // writes its own pages into them (see SetAsidePassedOverCheckpoint).
                PassedOverCheckpointFolder = SetAsidePassedOverCheckpoint(withLogFiles: true);
            }
        }
        catch
        {
            _checkpoints.Dispose();
            throw;
        }

        _settings = new FasterKVSettings<SpanByte, SpanByte>(directory, deleteDirOnDispose: false)
        {
            IndexSize = indexBytes,
            MemorySize = Math.Max(memoryBytes, 4 * Layout.PageBytes),
            PageSize = Layout.PageBytes,
            SegmentSize = Layout.SegmentBytes,
            MutableFraction = MutableFraction,
            // Off where the open recovers an older checkpoint itself, or starts over from the log.
            TryRecoverLatest = recovering is { InPlaceOfNewest: false } || (recovering is null && PassedOverCheckpoint is null),
            CheckpointManager = _checkpoints,
            RemoveOutdatedCheckpoints = false,
            // Null: FASTER's hash of the key's bytes, which a store from before ordered keys holds its index by.
            EqualityComparer = Layout.OrderedKeys ? StateKeyHash.Instance : null,
        };
        _logFiles = new GuardedLogDevice(new OpenCheckedDevice(_settings.LogDevice), TakeOutOfService);
        _settings.LogDevice = _logFiles;
        if (recovering is { Log: var recovered }
            && LogFraming.Check(directory, LogFileName, Layout, _logFiles.SectorSize, recovered.beginAddress, recovered.headAddress, recovered.finalLogicalAddress) is { } misframed)
        {
            // Refused before FASTER reads it: FASTER's recovery trusts every length it reads.
            _settings.Dispose();
            _checkpoints.Dispose();
            throw DamagedRecord(misframed.Address, misframed.Record ?? "record", misframed.Problem);
        }

        _store = new FasterKV<SpanByte, SpanByte>(_settings);
        if (recovering is { InPlaceOfNewest: true, Token: var older })
        {
            try
            {
                // Unlike the latest-checkpoint recovery above, this one throws what goes wrong.
                _store.Recover(older);
            }
            catch (Exception exception)
            {
                Dispose();
                throw new InvalidDataException(
                    $"the state store in {directory} cannot be recovered: its {PassedOverCheckpoint}, and recovering the checkpoint {older} before it failed: {exception.Message}. Its files are left as they are",
                    exception);
            }

            PassedOverCheckpointFolder = SetAsidePassedOverCheckpoint(withLogFiles: false);
        }

        if (_store.RecoveredCommitCookie is { Length: >= sizeof(long) } cookie)
        {
            RecoveredCheckpoint = true;
            RecoveredLogAddress = BitConverter.ToInt64(cookie);
            // Older checkpoints carry the address alone, or the address and the estimate.
            RecoveredSupersededBytes = cookie.Length >= 2 * sizeof(long) ? BitConverter.ToInt64(cookie, sizeof(long)) : 0;
            RecoveredLogSequence = cookie.Length >= 3 * sizeof(long) ? BitConverter.ToInt64(cookie, 2 * sizeof(long)) : null;
        }
    }

    /// <summary>Refuses a folder where the store, or FASTER for it, opens a file: its layout, a log
    /// file, or any entry of a checkpoint (FASTER keeps only files in a checkpoint's folder). See
    /// <see cref="FolderInPlaceOfFile"/>: FASTER would wait on it forever.</summary>
    private void RefuseFoldersInPlaceOfFiles()
    {
        FolderInPlaceOfFile.RefuseAny(
            _directory, name => name == StateLayout.FileName || FolderInPlaceOfFile.IsNumbered(name, LogFileName + "."), "the state store");
        foreach (string kind in new[] { _checkpointNames.LogCheckpointBasePath(), _checkpointNames.IndexCheckpointBasePath() })
        {
            string folder = Path.Combine(_checkpointDirectory, kind);
            foreach (string checkpoint in Directory.Exists(folder) ? Directory.EnumerateDirectories(folder) : [])
            {
                FolderInPlaceOfFile.RefuseAny(checkpoint, _ => true, "the state store's checkpoint");
            }
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

    /// <summary>The sequence number of the last log entry the recovered checkpoint covers: 0 when it
    /// covers none, null when there is no checkpoint or it predates the numbering.</summary>
    public long? RecoveredLogSequence { get; }

    /// <summary>
    /// What was wrong with the newest checkpoint when an older one was recovered in its place (or,
    /// where it was the only one, the store started empty: <see cref="RecoveredCheckpoint"/> is
    /// false), or null. A crash while a checkpoint is written and before it is read back (or one
    /// whose writes failed unnoticed) leaves it on disk incomplete, beside the whole one before it,
    /// which is only deleted once a newer one is read back whole, as the write-ahead log is only
    /// truncated then; so where there is none before it, the log holds every entry. The
    /// incomplete one is set aside (<see cref="PassedOverCheckpointFolder"/>) before the caller
    /// replays the log from the older checkpoint (or from its start), so that no later open weighs
    /// it again: the replay writes pages into the files it lacked, after which it could pass for
    /// whole, were the replay cut short.
    /// </summary>
    public string? PassedOverCheckpoint { get; private set; }

    /// <summary>Where the checkpoint <see cref="PassedOverCheckpoint"/> describes was moved, or null.</summary>
    public string? PassedOverCheckpointFolder { get; }

    /// <summary>Why the last checkpoint, durable, left an older one in place (it could not be
    /// deleted), or null.</summary>
    public string? OutdatedCheckpointKept { get; private set; }

    /// <summary>Bytes of log between its begin address and its tail, live and superseded records alike.</summary>
    public long LogBytes => _store.Log.TailAddress - _store.Log.BeginAddress;

    /// <summary>The log's tail address: how far it has been appended.</summary>
    public long TailAddress => _store.Log.TailAddress;

    /// <summary>Bytes at the log's tail where FASTER updates records in place.</summary>
    public long MutableBytes => (long)(_settings.MemorySize * MutableFraction);

    /// <summary>The most a fold-over checkpoint writes: the in-memory log, the index and its
    /// overflow buckets as they are now (the metadata's few kilobytes aside). The index is the
    /// store's own, which a recovered store takes from its checkpoint, whatever the settings say.</summary>
    public long CheckpointBytes => _settings.MemorySize + ((_store.IndexSize + _store.OverflowBucketCount) * HashBucketBytes);

    /// <summary>
    /// Why the store takes no more work until it is reopened, or null: a write to its log files
    /// failed, or a checkpoint did not finish in time, or its owner gave up waiting for its work
    /// (<see cref="TakeOutOfService"/>). FASTER never counts a page whose write failed as written
    /// and runs one checkpoint at a time, so its writes would block once memory fills, and no
    /// checkpoint or compaction could follow; work already waiting for such a page never ends. So
    /// the store takes no writes (see <see cref="BeginWrites"/>), checkpoints or compactions any
    /// more, and nothing waits for the work it was given (<see cref="AwaitAsync"/>). The
    /// write-ahead log, which no checkpoint truncates from then on, holds every write, and the
    /// next open replays it onto the last durable checkpoint.
    /// </summary>
    public string? OutOfService => _outOfService.Task.IsCompleted ? _outOfService.Task.Result : null;

    /// <summary>Takes the store out of service (see <see cref="OutOfService"/>) for
    /// <paramref name="reason"/>, unless it already is.</summary>
    public void TakeOutOfService(string reason) => _outOfService.TrySetResult(reason);

    /// <summary>
    /// Waits for <paramref name="work"/> on the store (a batch of writes, a compaction) unless the
    /// store goes out of service first, and returns why it did (null once the work is done; the
    /// work's own exception is thrown). Work so left may never end, FASTER waiting for a page whose
    /// write failed, which is why nothing waits for it.
    /// </summary>
    public async Task<string?> AwaitAsync(Task work)
    {
        // Not on the caller's context: the open waits for the replay's store writes synchronously.
        await Task.WhenAny(work, _outOfService.Task).ConfigureAwait(false);
        if (!work.IsCompleted)
        {
            return OutOfService;
        }

        await work.ConfigureAwait(false);
        return null;
    }

    /// <summary><see cref="Compact"/> on the thread pool, waited for as <see cref="AwaitAsync"/>
    /// waits: a compaction waits for its pages to be written, so one whose write failed would
    /// never end.</summary>
    public Task<string?> CompactAsync() =>
        OutOfService is { } outOfService ? Task.FromResult<string?>(outOfService) : AwaitAsync(Task.Run(Compact));

    /// <summary>
    /// How long a checkpoint may reasonably take: a fold-over checkpoint writes at most the store's
    /// in-memory log and its index (and overflow buckets, which the minute covers), so this is a
    /// minute plus those bytes on a slow disk (1 MiB/s): 2.1 minutes with the default sizes.
    /// </summary>
    public TimeSpan UnhurriedCheckpointTime => TimeSpan.FromMinutes(1) + OnSlowDisk(CheckpointBytes);

    /// <summary>How long writing <paramref name="bytes"/> takes on a slow disk (1 MiB/s).</summary>
    public static TimeSpan OnSlowDisk(long bytes) => TimeSpan.FromSeconds((double)bytes / SlowDiskBytesPerSecond);

    /// <summary>Opens a batch of writes; dispose it to end the batch. Once <see cref="OutOfService"/>,
    /// the batch is dropped: nothing reads the store but checkpoints, and none will be taken.</summary>
    public Writer BeginWrites() =>
        new(OutOfService is null ? _store.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>() : null);

    /// <summary>
    /// Visits every live record (latest version of each key) with its <see cref="RecordCodec"/>
    /// encoding (valid during the visit), once every record of the log, live or not, has passed its
    /// checksum (<see cref="StateRecord"/> says why all).
    /// </summary>
    /// <exception cref="InvalidDataException">A record is damaged; the error names it and where it lies.</exception>
    public void ForEach(Action<RecordKind, int, ReadOnlySpan<byte>> visit)
    {
        CheckRecords(_store.Log.BeginAddress, _store.Log.TailAddress);
        byte[] buffer = [];
        using var session = _store.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>();
        using IFasterScanIterator<SpanByte, SpanByte> iterator = session.Iterate();
        while (iterator.GetNext(out RecordInfo info))
        {
            if (info.Tombstone)
            {
                continue;
            }

            ReadOnlySpan<byte> key = iterator.GetKey().AsReadOnlySpan();
            int id = StateRecord.Id(key);
            visit(StateRecord.Kind(key), id, StateRecord.Encoding(id, iterator.GetValue().AsReadOnlySpan(), ref buffer));
        }
    }

    /// <summary>Throws for the first record in [<paramref name="from"/>, <paramref name="until"/>)
    /// of the log that fails its check, naming it, its file and its offset there.</summary>
    private void CheckRecords(long from, long until)
    {
        using IFasterScanIterator<SpanByte, SpanByte> scan = _store.Log.Scan(from, until);
        while (scan.GetNext(out RecordInfo info))
        {
            if (info.Tombstone)
            {
                continue;
            }

            ReadOnlySpan<byte> key = scan.GetKey().AsReadOnlySpan();
            if (StateRecord.Damage(key, scan.GetValue().AsReadOnlySpan(), Layout.RecordsChecksummed) is { } damage)
            {
                throw DamagedRecord(scan.CurrentAddress, StateRecord.Describe(key), damage);
            }
        }
    }

    /// <summary>The error for a damaged record of the log (<paramref name="record"/> names it),
    /// naming its file and its offset there.</summary>
    private InvalidDataException DamagedRecord(long address, string record, string damage)
    {
        int segmentBits = BitOperations.Log2((ulong)Layout.SegmentBytes);
        string file = Path.Combine(_directory, $"{LogFileName}.{address >> segmentBits}");
        return new InvalidDataException(
            $"the state store's {record} is damaged ({file}, offset {address & ((1L << segmentBits) - 1)}): {damage}. "
            + "The collection does not open until its store is restored (from a backup); its files are left as they are");
    }

    /// <summary>
    /// Copies every live record of the log to its tail and moves the begin address past the old
    /// copies (FASTER's lookup compaction: each record is kept if the index still points at it),
    /// once every record it will read has passed its check: one whose key was damaged would be
    /// taken for a dead one and dropped. Checked first, not as the compaction reads them: a
    /// compaction stopped part way would leave its copies at the tail, and each later checkpoint,
    /// its compaction still due, would copy the live records again until the disk filled. Callers
    /// must not write meanwhile. Disk is freed by the next checkpoint.
    /// </summary>
    /// <exception cref="InvalidDataException">A record is damaged; nothing was copied or moved.</exception>
    public void Compact()
    {
        MakeReadOnly(_store.Log.TailAddress);
        long until = _store.Log.SafeReadOnlyAddress;
        CheckRecords(_store.Log.BeginAddress, until);
        using var session = _store.For(new SpanByteFunctions<Empty>()).NewSession<SpanByteFunctions<Empty>>();
        session.Compact(until, CompactionType.Lookup);
    }

    /// <summary>
    /// Makes the log read-only up to <paramref name="address"/> without waiting for its pages to
    /// reach their files. FASTER's wait (<c>LogAccessor.ShiftReadOnlyAddress</c>, FASTER 2.6.5) spins
    /// on <c>Thread.Yield</c> until they do, so one whose write failed kept a core busy until the
    /// process exited, long after the work was given up on. Nothing here needs the pages written:
    /// read-only records are copied rather than updated in place, and scans read the pages still in
    /// memory from there; the move of the begin address that ends a compaction or a rewrite waits
    /// for them, sleeping on FASTER's flush event.
    /// </summary>
    private void MakeReadOnly(long address) => _store.Log.ShiftReadOnlyAddress(address, wait: false);

    /// <summary>
    /// Writes every live record again through <paramref name="writeLive"/>, then drops the log
    /// before them, as a compaction drops what it copied (the next checkpoint deletes the files);
    /// in place of a compaction that met a damaged record. Every record is made read-only first, so
    /// that each is appended anew rather than updated in place below the new begin address; the
    /// begin address moves only once all are written, so a failure part way drops nothing.
    /// Callers must not write meanwhile.
    /// </summary>
    public void ReplaceAll(Action<Writer> writeLive)
    {
        long from = _store.Log.TailAddress;
        MakeReadOnly(from);
        using (Writer writer = BeginWrites())
        {
            writeLive(writer);
        }

        // Out of service, the writer dropped the records (and no checkpoint follows).
        if (OutOfService is null)
        {
            _store.Log.ShiftBeginAddress(from);
        }
    }

    /// <summary>
    /// Takes a checkpoint that records <paramref name="logAddress"/> as covered, with the sequence
    /// number of the last entry before it (and the caller's superseded-bytes estimate), waits for it at most <paramref name="timeout"/>, and reads it
    /// back. Only a checkpoint read back whole replaces the previous one, whose files are then
    /// deleted. Returns why the checkpoint is not durable, or null when it is: the caller may then
    /// drop the write-ahead log up to <paramref name="logAddress"/>, and must not otherwise.
    /// </summary>
    /// <remarks>Not cancellable: FASTER leaves a checkpoint cancelled part way in progress, refusing
    /// the next. One that times out, or meets a failed write, is abandoned for good (see
    /// <see cref="OutOfService"/>).</remarks>
    public async Task<string?> CheckpointAsync(long logAddress, long logSequence, long supersededBytes, TimeSpan timeout)
    {
        if (OutOfService is { } outOfService)
        {
            return $"the state store is out of service until the database is reopened ({outOfService})";
        }

        byte[] cookie = [.. BitConverter.GetBytes(logAddress), .. BitConverter.GetBytes(supersededBytes), .. BitConverter.GetBytes(logSequence)];
        _store.CommitCookie = cookie;

        // The checkpoint starts from the log's begin address (callers neither write nor compact
        // meanwhile), and needs no file below it.
        long beginAddress = _store.Log.BeginAddress;
        Task<(bool Started, Guid Token)> checkpoint = _store.TakeFullCheckpointAsync(CheckpointType.FoldOver).AsTask();
        string? abandoned;
        try
        {
            abandoned = await AwaitAsync(checkpoint).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            // A write that neither completes nor fails (FASTER would wait for it forever).
            abandoned = $"its checkpoint did not finish within {timeout}";
            TakeOutOfService(abandoned);
        }

        if (abandoned is not null)
        {
            return $"the state store's checkpoint was given up on ({abandoned}); the store takes no more checkpoints until the database is reopened";
        }

        (bool started, Guid token) = await checkpoint;
        if (!started)
        {
            return "the state store refused to start a checkpoint (another is in progress)";
        }

        string? incomplete = Incomplete(token, cookie);
        if (incomplete is not null)
        {
            // Recovery takes the newest index checkpoint whose metadata reads, so one with a short
            // hash-table file would be taken over the previous, whole one.
            _checkpoints.Purge(token);
            return $"the state store's checkpoint {token} did not reach disk whole ({incomplete}); the previous checkpoint is kept";
        }

        OutdatedCheckpointKept = null;
        foreach (Guid outdated in CheckpointTokens().Where(other => other != token).ToList())
        {
            try
            {
                _checkpoints.Purge(outdated);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The new checkpoint is durable, and recovery takes the newest: the old one only
                // takes room. Its log files go all the same: the write-ahead log is truncated past it
                // once this returns, so recovery could not start from it anyway, and kept they grew
                // with every checkpoint. Thrown on, the failure stopped every later checkpoint here,
                // and the write-ahead log was never truncated again.
                OutdatedCheckpointKept ??= $"checkpoint {outdated} could not be deleted ({e.GetType().Name}: {e.Message}); the next checkpoint tries again";
            }
        }

        _logFiles.DeleteUntil(beginAddress);

        return null;
    }

    /// <summary>
    /// Moves the checkpoint passed over (see <see cref="PassedOverCheckpoint"/>) out of the folders
    /// recovery looks in, into <c>checkpoints/incomplete/TOKEN</c>, kept for inspection; returns
    /// that folder. <paramref name="withLogFiles"/> (a store starting empty in its place) moves the
    /// store's log files there too: the empty store writes from the log's start again, and its
    /// first checkpoint, cut short, could otherwise pass for whole on the old files' lengths.
    /// </summary>
    private string SetAsidePassedOverCheckpoint(bool withLogFiles)
    {
        string setAside = Path.Combine(_checkpointDirectory, IncompleteFolder, _passedOver.ToString());
        Directory.CreateDirectory(setAside);
        // The moves are made durable before the replay writes a page: undone by a power loss, they
        // would bring the checkpoint back beside those pages.
        var moved = new List<string> { setAside, Path.GetDirectoryName(setAside)! };
        foreach (FileDescriptor part in new[] { _checkpointNames.LogCheckpointBase(_passedOver), _checkpointNames.IndexCheckpointBase(_passedOver) })
        {
            string folder = Path.Combine(_checkpointDirectory, part.directoryName);
            if (Directory.Exists(folder))
            {
                Directory.Move(folder, Path.Combine(setAside, Path.GetDirectoryName(part.directoryName)!));
                moved.Add(Path.GetDirectoryName(folder)!);
            }
        }

        foreach (string file in withLogFiles ? Directory.EnumerateFiles(_directory, LogFileName + ".*").ToList() : [])
        {
            File.Move(file, Path.Combine(setAside, Path.GetFileName(file)));
            moved.Add(_directory);
        }

        moved.Distinct().ToList().ForEach(DirectoryDurability.Flush);
        return setAside;
    }

    /// <summary>Every checkpoint on disk, whole or not: log and index parts share the token.</summary>
    private IEnumerable<Guid> CheckpointTokens() =>
        _checkpoints.GetLogCheckpointTokens().Concat(_checkpoints.GetIndexCheckpointTokens()).Distinct();

    /// <summary>
    /// What of checkpoint <paramref name="token"/> recovery would not find, or null when it would
    /// find it all: both metadata files, read back through the checkpoint manager and parsed as
    /// recovery parses them, naming this token and (the log's) carrying this cookie; the hash-table
    /// file as long as the index metadata says was written; and the log files from the checkpoint's
    /// begin address to its final address.
    /// </summary>
    private string? Incomplete(Guid token, byte[] cookie)
    {
        try
        {
            return IncompleteFile(_checkpointNames.LogCheckpointMetadata(token), 1)
                ?? IncompleteFile(_checkpointNames.IndexCheckpointMetadata(token), 1)
                ?? IncompleteLog(token, cookie)
                ?? IncompleteIndex(token);
        }
        catch (Exception exception) when (IsUnreadableMetadata(exception))
        {
            return $"its metadata does not read back: {exception.Message}";
        }
    }

    /// <summary>Whether reading or parsing a checkpoint's metadata failed on what the files hold.</summary>
    private static bool IsUnreadableMetadata(Exception exception) =>
        exception is IOException or FormatException or FasterException or ArgumentException or OverflowException;

    /// <summary>The checkpoint the store recovers: its token, its log's metadata, and whether it is
    /// recovered in place of an incomplete newer one (FASTER recovers its latest by itself).</summary>
    private sealed record RecoveryChoice(Guid Token, HybridLogRecoveryInfo Log, bool InPlaceOfNewest);

    /// <summary>
    /// Checks the checkpoint FASTER will recover, and returns it, or an older one to recover in its
    /// place when that one is incomplete, or null when there is none.
    /// FASTER recovers without a word a checkpoint whose files are missing or short: it recreates a
    /// missing log file empty and opens without the records it held (and reading garbage may crash
    /// the process), so the files are checked before it opens, as each new checkpoint is checked
    /// once written (<see cref="Incomplete"/>). It recovers the first checkpoint whose log metadata
    /// and cookie read, in the order the folder lists them (newest first, by folder time), passing
    /// over the others (one a crash interrupted before its metadata, say); older checkpoints are
    /// deleted once a newer one is verified, so that is the newest. An incomplete one gives way to
    /// the newest whole checkpoint before it only where the write-ahead log still holds every entry
    /// from the address that one covers, which replay then checks entry by entry, and, where none is
    /// before it, to an empty store where the log holds every entry from its first; otherwise the
    /// open is refused.
    /// </summary>
    private RecoveryChoice? ChooseCheckpoint(Func<long, bool>? logReplaysFrom)
    {
        string? incomplete = null;
        // Whether the log holds every entry from an address on, up to the one the incomplete
        // checkpoint covers: that address was committed to the log before the checkpoint began, so a
        // log that stops short of it lost entries (a lost or restored wal folder), which the
        // replay could not tell.
        long? incompleteCovers = null;
        bool LogHoldsFrom(long from) =>
            logReplaysFrom is not null && logReplaysFrom(from) && incompleteCovers is long upTo && logReplaysFrom(upTo);
        foreach (Guid token in _checkpoints.GetLogCheckpointTokens())
        {
            byte[] cookie;
            HybridLogRecoveryInfo log;
            try
            {
                log = ReadLogMetadata(token, out string encodedCookie);
                cookie = Convert.FromBase64String(encodedCookie);
            }
            catch (Exception exception) when (IsUnreadableMetadata(exception))
            {
                continue;
            }

            string? missing = Incomplete(token, cookie);
            if (incomplete is null)
            {
                if (missing is null)
                {
                    return new RecoveryChoice(token, log, InPlaceOfNewest: false);
                }

                incomplete = $"checkpoint {token} is incomplete: {missing}";
                incompleteCovers = CoveredAddress(cookie);
                _passedOver = token;
            }
            else if (missing is null)
            {
                long? covered = CoveredAddress(cookie);
                if (covered is long address && LogHoldsFrom(address))
                {
                    PassedOverCheckpoint = incomplete;
                    return new RecoveryChoice(token, log, InPlaceOfNewest: true);
                }

                throw Unrecoverable(
                    $"{incomplete}, and the write-ahead log does not hold every entry after the whole checkpoint {token} before it"
                    + (covered is long from ? $" (from address {from}" : " (which records no address") + $" up to {Covered(incompleteCovers)})");
            }
        }

        if (incomplete is null)
        {
            return null;
        }

        if (LogHoldsFrom(0))
        {
            PassedOverCheckpoint = incomplete;
            return null;
        }

        throw Unrecoverable($"{incomplete}, and no whole checkpoint precedes it while the write-ahead log does not hold every entry from its first up to {Covered(incompleteCovers)}");
    }

    /// <summary>The write-ahead-log address a checkpoint's cookie records, or null (none recorded).</summary>
    private static long? CoveredAddress(byte[] cookie) => cookie.Length >= sizeof(long) ? BitConverter.ToInt64(cookie) : null;

    private static string Covered(long? address) =>
        address is long upTo ? $"address {upTo}, which the incomplete checkpoint covers" : "the address the incomplete checkpoint covers, which it does not record";

    private InvalidDataException Unrecoverable(string incomplete) => new(
        $"the state store in {_directory} cannot be recovered: its {incomplete}. Opening it would lose the records held there; its files are left as they are");

    private string? IncompleteLog(Guid token, byte[] cookie)
    {
        HybridLogRecoveryInfo info = ReadLogMetadata(token, out string recordedCookie);
        if (info.guid != token)
        {
            return $"its log metadata names checkpoint {info.guid}";
        }

        if (recordedCookie != Convert.ToBase64String(cookie))
        {
            return "its log metadata lacks the covered write-ahead-log address";
        }

        return IncompleteLogFiles(info);
    }

    /// <summary>A checkpoint's log metadata, parsed as recovery parses it, and the cookie after it (base64).</summary>
    private HybridLogRecoveryInfo ReadLogMetadata(Guid token, out string cookie)
    {
        byte[] metadata = _checkpoints.GetLogCheckpointMetadata(token, null, false, -1);
        var info = new HybridLogRecoveryInfo();
        using var reader = new StreamReader(new MemoryStream(metadata));
        info.Initialize(reader);
        cookie = reader.ReadToEnd();
        return info;
    }

    /// <summary>Which log file lacks part of the checkpoint's log, from its begin address to its
    /// final address, or null.</summary>
    private string? IncompleteLogFiles(HybridLogRecoveryInfo info)
    {
        int segmentBits = BitOperations.Log2((ulong)Layout.SegmentBytes);
        for (long address = info.beginAddress; address < info.finalLogicalAddress; address = ((address >> segmentBits) + 1) << segmentBits)
        {
            long segment = address >> segmentBits;
            long segmentEnd = Math.Min(info.finalLogicalAddress, (segment + 1) << segmentBits);
            string file = Path.Combine(_directory, $"{LogFileName}.{segment}");
            long needed = segmentEnd - (segment << segmentBits);
            if (!File.Exists(file))
            {
                return $"{file} is missing (the checkpoint needs its first {needed} bytes)";
            }

            if (FileLength(file) < needed)
            {
                return $"{file} holds {FileLength(file)} bytes of the {needed} the checkpoint needs";
            }
        }

        return null;
    }

    private string? IncompleteIndex(Guid token)
    {
        // FASTER's index metadata (IndexRecoveryInfo, internal): version, checksum, token, table
        // size, hash-table bytes, overflow-bucket bytes, then counts and addresses, a line each.
        string[] lines = Encoding.UTF8.GetString(_checkpoints.GetIndexCheckpointMetadata(token)).Split('\n', StringSplitOptions.TrimEntries);
        if (lines.Length < 9 || Guid.Parse(lines[2]) != token)
        {
            return "its index metadata does not name it";
        }

        long hashTableBytes = long.Parse(lines[4], CultureInfo.InvariantCulture) + long.Parse(lines[5], CultureInfo.InvariantCulture);
        return IncompleteFile(_checkpointNames.HashTable(token), hashTableBytes);
    }

    /// <summary>Why the file FASTER writes for <paramref name="descriptor"/> could not be opened
    /// for writing, or a write to it failed, or it is shorter than <paramref name="neededBytes"/>
    /// (or missing), or null.</summary>
    private string? IncompleteFile(FileDescriptor descriptor, long neededBytes)
    {
        if (_checkpointFiles.WriteFailure(descriptor) is { } failure)
        {
            // Asked first: a link to a missing file has a length of its own, and a file whose first
            // write failed reaches its full length through the later ones.
            return failure;
        }

        string file = Path.Combine(_checkpointDirectory, descriptor.directoryName, descriptor.fileName + FirstSegmentSuffix);
        long length = FileLength(file);
        return length < neededBytes ? $"{file} holds {length} bytes; the checkpoint needs {neededBytes}" : null;
    }

    private static long FileLength(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    public void Dispose()
    {
        // Work given up on may still run, or have writes in flight from the store's buffers (a
        // slow disk rather than a failed one), and freeing them under it could crash the process:
        // the store is left to the process's end, touching its files (log and checkpoints) no
        // more, which the store opened in its place next may be using.
        if (OutOfService is not null)
        {
            _logFiles.Retire();
            _checkpointFiles.Retire();
            return;
        }

        _store.Dispose();
        _settings.Dispose();
        _checkpoints.Dispose();
    }

    /// <summary>A short-lived session applying one batch of upserts and deletes; without a session
    /// (the store is out of service) it drops them.</summary>
    internal readonly struct Writer(ClientSession<SpanByte, SpanByte, SpanByte, SpanByteAndMemory, Empty, SpanByteFunctions<Empty>>? session) : IDisposable
    {
        /// <summary>Records up to this size are sealed on the stack: every edge, and concepts of
        /// modest dimension and metadata.</summary>
        private const int StackValueBytes = 1024;

        /// <summary>Stores a record, given its <see cref="RecordCodec"/> encoding (its id first), as
        /// the checksummed value <see cref="StateRecord"/> describes.</summary>
        public void Put(RecordKind kind, ReadOnlySpan<byte> encoding)
        {
            int length = encoding.Length + StateRecord.AddedBytes;
            byte[]? rented = length > StackValueBytes ? ArrayPool<byte>.Shared.Rent(length) : null;
            Span<byte> value = (rented is null ? stackalloc byte[StackValueBytes] : rented)[..length];
            StateRecord.Seal(kind, encoding, value);
            Upsert(kind, BinaryPrimitives.ReadInt32LittleEndian(encoding), value);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        /// <summary>Stores <paramref name="value"/>, a value as <see cref="StateRecord"/> describes
        /// them, under the record's kind and id.</summary>
        public unsafe void Upsert(RecordKind kind, int id, ReadOnlySpan<byte> value)
        {
            if (session is null)
            {
                return;
            }

            Span<byte> keyBytes = stackalloc byte[StateRecord.KeyBytes];
            StateRecord.WriteKey(keyBytes, kind, id);
            fixed (byte* valuePointer = value)
            {
                var key = SpanByte.FromFixedSpan(keyBytes);
                var record = SpanByte.FromPointer(valuePointer, value.Length);
                session.Upsert(ref key, ref record);
            }
        }

        public void Delete(RecordKind kind, int id)
        {
            if (session is null)
            {
                return;
            }

            Span<byte> keyBytes = stackalloc byte[StateRecord.KeyBytes];
            StateRecord.WriteKey(keyBytes, kind, id);
            var key = SpanByte.FromFixedSpan(keyBytes);
            session.Delete(ref key);
        }

        public void Dispose()
        {
            session?.CompletePending(wait: true);
            session?.Dispose();
        }
    }
}
