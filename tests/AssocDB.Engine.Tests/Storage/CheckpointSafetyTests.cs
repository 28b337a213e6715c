using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using FASTER.core;
using static AssocDB.Engine.Tests.Support.SmallStateStore;

namespace AssocDB.Engine.Tests.Storage;

// Checkpoints on a failing disk, with real write errors: files FASTER writes are links to
// /dev/full, on which every write fails (ENOSPC; opened unbuffered, as FASTER opens its log, the
// open fails instead, which FASTER's flush reports the same way).
public sealed class CheckpointSafetyTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(1);

    private readonly TempDirectory _folder = new();
    private readonly string _state;
    private readonly FullDiskForLogMetadata _devices;

    public CheckpointSafetyTests()
    {
        _state = Path.Combine(_folder.Path, "state");
        _devices = new FullDiskForLogMetadata(_folder.Path);
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>The store in the test's folder, with 64 KiB log files and pages.</summary>
    private StateStore OpenStore(INamedDeviceFactory? devices = null) => SmallStateStore.Open(_state, devices);

    /// <summary>Ten records checkpointed at address 100, ten more, then a checkpoint at 200 whose
    /// log metadata write fails; returns what that checkpoint reported.</summary>
    private static Task<string?> CheckpointThenFailAsync(StateStore store, FullDiskForLogMetadata devices) =>
        CheckpointThenAsync(store, () => devices.Failing = true);

    /// <summary>Ten records checkpointed at address 100, ten more, then <paramref name="disturb"/>
    /// and a checkpoint at 200; returns what that checkpoint reported.</summary>
    private static async Task<string?> CheckpointThenAsync(StateStore store, Action disturb)
    {
        Write(store, 0, 10);
        Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));
        Write(store, 10, 20);
        disturb();
        return await store.CheckpointAsync(200, 2, 0, Generous);
    }

    [Fact]
    public async Task A_checkpoint_whose_metadata_write_fails_is_reported_and_keeps_the_previous_checkpoint()
    {
        using (StateStore store = OpenStore(_devices))
        {
            string? failure = await CheckpointThenFailAsync(store, _devices);
            Assert.NotNull(failure);
            Assert.Contains("did not reach disk whole", failure);
            Assert.Null(store.OutOfService);

            // Once the disk takes writes again, the next checkpoint succeeds and replaces the old one.
            _devices.Failing = false;
            Write(store, 20, 30);
            Assert.Null(await store.CheckpointAsync(300, 3, 0, Generous));
        }

        Assert.Single(Directory.GetDirectories(Path.Combine(_state, "checkpoints", "cpr-checkpoints")));
        AssertRecovers(300, 30);
    }

    [Fact]
    public async Task A_failed_checkpoint_leaves_what_a_reopen_recovers_from()
    {
        using (StateStore store = OpenStore(_devices))
        {
            Assert.NotNull(await CheckpointThenFailAsync(store, _devices));
        }

        // The previous checkpoint was not deleted: recovery finds it, and the log after address 100
        // (which the caller kept) replays the rest.
        AssertRecovers(100, 10);
    }

    [Fact]
    public async Task A_failed_checkpoint_after_a_compaction_keeps_the_log_files_the_previous_checkpoint_needs()
    {
        using (StateStore store = OpenStore(_devices))
        {
            // 1 KiB records in 64 KiB log files: the checkpoint at 100 spans several files.
            Write(store, 0, 200, valueBytes: 1024);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));

            // Every record rewritten, then compacted: the log's begin address passes every file the
            // checkpoint at 100 needs, and a checkpoint would delete them once durable.
            Write(store, 0, 200, valueBytes: 1024);
            store.Compact();
            _devices.Failing = true;
            Assert.NotNull(await store.CheckpointAsync(200, 2, 0, Generous));
        }

        AssertRecovers(100, 200);
    }

    // FASTER only logs a failed write of the index's hash table and goes on; when a later write at a
    // higher offset lands, the file has its full length around the hole, and the checkpoint was taken
    // for whole: the previous one was purged and the log truncated, and keys whose buckets were lost
    // later lost their deletes and updates.
    [Fact]
    public async Task A_checkpoint_whose_hash_table_write_fails_is_refused_even_when_the_file_reaches_its_length()
    {
        var devices = new HoleInHashTable();
        using (StateStore store = OpenStore(devices))
        {
            string? failure = await CheckpointThenAsync(store, () => devices.Failing = true);
            Assert.True(devices.Failed, "the test's failing write was never made");
            Assert.NotNull(failure);
            Assert.Contains("did not reach disk whole", failure);
            Assert.Contains("ht.dat.0 failed (error code 28)", failure);
        }

        AssertRecovers(100, 10);
    }

    // The purge of the checkpoints a durable one replaces threw on, before the old log files were
    // deleted: every later checkpoint stopped there too, and the write-ahead log was never
    // truncated again.
    [Fact]
    public async Task A_checkpoint_whose_predecessor_cannot_be_deleted_succeeds_and_the_next_one_deletes_it()
    {
        var devices = new UndeletableCheckpoints();
        using (StateStore store = OpenStore(devices))
        {
            Assert.Null(await CheckpointThenAsync(store, () => devices.Refusing = true));
            Assert.Contains("could not be deleted (IOException: the disk refuses deletes); the next checkpoint tries again", store.OutdatedCheckpointKept);
            Assert.Equal(2, Directory.GetDirectories(Path.Combine(_state, "checkpoints", "cpr-checkpoints")).Length);

            devices.Refusing = false;
            Write(store, 20, 30);
            Assert.Null(await store.CheckpointAsync(300, 3, 0, Generous));
            Assert.Null(store.OutdatedCheckpointKept);
        }

        Assert.Single(Directory.GetDirectories(Path.Combine(_state, "checkpoints", "cpr-checkpoints")));
        AssertRecovers(300, 30);
    }

    /// <summary>A database in <paramref name="folder"/> whose state store has 64 KiB pages and
    /// files and 256 KiB of memory, so that its pages reach their files early.</summary>
    private static DatabaseOptions SmallStoreOptions(string folder, TimeSpan checkpointTimeout) => new()
    {
        DataDirectory = folder,
        Device = "cpu",
        CheckpointInterval = TimeSpan.Zero,
        StateMemoryBytes = 1L << 18,
        StateIndexBytes = 1L << 16,
        StateSegmentBytes = 1L << 16,
        LogPageSizeBits = 22,
        StateCheckpointTimeout = checkpointTimeout,
    };

    /// <summary>Makes the state store's log files from <paramref name="first"/> on (up to 4 MiB of
    /// log) links to /dev/full, where every write fails; returns them.</summary>
    private static string[] FailFilesFrom(string stateFolder, int first)
    {
        string[] files = [.. Enumerable.Range(first, 64).Select(segment => Path.Combine(stateFolder, $"hlog.log.{segment}"))];
        foreach (string file in files)
        {
            File.CreateSymbolicLink(file, "/dev/full");
        }

        return files;
    }

    /// <summary>The reason a store gives for going out of service on a failed write to one of the
    /// files of <see cref="FailFilesFrom"/>: whichever of the pages written at once fails first, so
    /// not always the first file's.</summary>
    private static Regex FailedWriteTo(string stateFolder) =>
        new($"a write to {Regex.Escape(stateFolder)}/hlog\\.log\\.[1-9][0-9]* at offset [0-9]+ failed");

    /// <summary>Deletes the links of <see cref="FailFilesFrom"/>: disk space is back.</summary>
    private static void Heal(string[] files)
    {
        foreach (string file in files)
        {
            File.Delete(file);
        }
    }

    /// <summary>The collection in the folder, reopened after its store went out of service,
    /// holds every concept acknowledged, and checkpoints again.</summary>
    private static async Task AssertReopensWithAsync(DatabaseOptions options, int concepts)
    {
        await using AssocDatabase database = AssocDatabase.Open(options with { CheckpointOnClose = false });
        Collection collection = database.GetCollection("c").AssertOk();
        Assert.Equal(concepts, collection.Describe().AssertOk().ConceptCount);
        for (int i = 0; i < concepts; i++)
        {
            Assert.True(collection.GetConcept(ConceptName(i)).IsOk, $"acknowledged concept {i} is missing");
        }

        (await collection.CheckpointAsync()).AssertOk();
    }

    // FASTER never counts a page whose write failed as written: its checkpoint waited for that page
    // until the timeout ran out (2.1 minutes by default). The failed write is seen as it happens.
    [Fact]
    public async Task A_checkpoint_whose_page_flush_fails_is_refused_at_once_keeps_the_log_and_lets_writes_and_close_go_on()
    {
        using var folder = new TempDirectory();
        DatabaseOptions options = SmallStoreOptions(folder.Path, TimeSpan.FromMinutes(10));
        string[] failing;
        await using (AssocDatabase database = AssocDatabase.Open(options))
        {
            database.CreateCollection(new CollectionSpec("c", 64, Metric.Cosine)).AssertOk();
            Collection collection = database.GetCollection("c").AssertOk();
            string stateFolder = Path.Combine(collection.Directory, "state");
            await UpsertAsync(collection, 0, 20);
            (await collection.CheckpointAsync()).AssertOk();

            // The next checkpoint flushes a page into the second file, which fails.
            failing = FailFilesFrom(stateFolder, 1);
            await UpsertAsync(collection, 20, 320);
            var clock = Stopwatch.StartNew();
            EngineError refused = (await collection.CheckpointAsync().WaitAsync(Generous)).AssertError(ErrorCode.FailedPrecondition, "collection");
            Assert.Contains("its state store is out of service until the database is reopened (after the cause is fixed, e.g. disk space freed): a write to ", refused.Message, StringComparison.Ordinal);
            Assert.Matches(FailedWriteTo(stateFolder), refused.Message);
            Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(30));

            // Writes go on, later checkpoints refuse at once, and the database closes.
            await UpsertAsync(collection, 320, 340).WaitAsync(Generous);
            clock.Restart();
            (await collection.CheckpointAsync()).AssertError(ErrorCode.FailedPrecondition, "collection");
            (await database.CheckpointAsync()).AssertError(ErrorCode.FailedPrecondition, "collection");
            // Refused before any I/O; waiting for the store's timeout instead takes 30 s each.
            Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
            await database.CloseAsync(checkpoint: true).AsTask().WaitAsync(Generous);
        }

        // Disk space is back: the reopen recovers the first checkpoint and replays the log after it.
        Heal(failing);
        await AssertReopensWithAsync(options, 340);
    }

    // Once the store's memory holds pages that could not be written, FASTER's next write waits
    // for room forever, and the writer waited for that write (the store's share of the last batch)
    // before logging the next one: every later write, checkpoint and close hung.
    [Fact]
    public async Task A_store_write_stuck_on_a_failed_page_flush_takes_the_store_out_of_service_and_writes_go_on()
    {
        using var folder = new TempDirectory();
        DatabaseOptions options = SmallStoreOptions(folder.Path, TimeSpan.FromMinutes(10));
        string[] failing;
        const int Concepts = 4000;
        await using (AssocDatabase database = AssocDatabase.Open(options))
        {
            database.CreateCollection(new CollectionSpec("c", 64, Metric.Cosine)).AssertOk();
            Collection collection = database.GetCollection("c").AssertOk();
            string stateFolder = Path.Combine(collection.Directory, "state");
            failing = FailFilesFrom(stateFolder, 1);

            // One batch of about 600 KB, twice the store's memory: its store writes fill the memory
            // after a page's write failed, and wait for room; the next write waits for them.
            await UpsertAsync(collection, 0, Concepts / 2, batchSize: Concepts / 2).WaitAsync(Generous);
            await UpsertAsync(collection, Concepts / 2, Concepts).WaitAsync(Generous);
            EngineError refused = (await collection.CheckpointAsync().WaitAsync(Generous)).AssertError(ErrorCode.FailedPrecondition, "collection");
            Assert.Matches(FailedWriteTo(stateFolder), refused.Message);
            await database.CloseAsync(checkpoint: true).AsTask().WaitAsync(Generous);
        }

        Heal(failing);
        await AssertReopensWithAsync(options, Concepts);
    }

    // The open replays the log into the store as the writer applies its batches, and met the same
    // wait: a page write that failed while the log was replayed hung the open itself.
    [Fact]
    public async Task A_page_flush_failing_while_the_log_is_replayed_takes_the_store_out_of_service_and_the_open_goes_on()
    {
        using var folder = new TempDirectory();
        DatabaseOptions options = SmallStoreOptions(folder.Path, TimeSpan.FromMinutes(10));
        const int Concepts = 4000;
        string stateFolder;
        await using (AssocDatabase database = AssocDatabase.Open(options with { CheckpointOnClose = false }))
        {
            database.CreateCollection(new CollectionSpec("c", 64, Metric.Cosine)).AssertOk();
            Collection collection = database.GetCollection("c").AssertOk();
            stateFolder = Path.Combine(collection.Directory, "state");
            await UpsertAsync(collection, 0, Concepts, batchSize: Concepts / 2);
        }

        // Nothing was checkpointed, so the reopen replays every batch into an empty store, whose
        // pages (twice its memory) fill its first file and then fail.
        foreach (string file in Directory.GetFiles(stateFolder, "hlog.log.*"))
        {
            File.Delete(file);
        }

        string[] failing = FailFilesFrom(stateFolder, 1);
        AssocDatabase reopened = await Task.Run(() => AssocDatabase.Open(options)).WaitAsync(Generous);
        await using (reopened)
        {
            Collection collection = reopened.GetCollection("c").AssertOk();
            Assert.Equal(Concepts, collection.Describe().AssertOk().ConceptCount);
            EngineError refused = (await collection.CheckpointAsync().WaitAsync(Generous)).AssertError(ErrorCode.FailedPrecondition, "collection");
            Assert.Matches(FailedWriteTo(stateFolder), refused.Message);
            await UpsertAsync(collection, Concepts, Concepts + 20).WaitAsync(Generous);
            await reopened.CloseAsync(checkpoint: true).AsTask().WaitAsync(Generous);
        }

        Heal(failing);
        await AssertReopensWithAsync(options, Concepts + 20);
    }

    // A compaction first waits for the store's pages to reach their files (FASTER's own wait,
    // without end): one whose page write failed hung the checkpoint, which the timeout did not
    // cover, and every write and close after it.
    [Fact]
    public async Task A_compaction_stuck_on_a_failed_page_flush_fails_its_checkpoint_and_writes_and_close_go_on()
    {
        using var folder = new TempDirectory();
        DatabaseOptions options = SmallStoreOptions(folder.Path, TimeSpan.FromMinutes(10));
        string[] failing;
        await using (AssocDatabase database = AssocDatabase.Open(options))
        {
            (Collection collection, failing, EngineError refused) = await CompactOnAFailedFlushAsync(database);
            Assert.Contains("its state store is out of service", refused.Message, StringComparison.Ordinal);
            Assert.Contains(" failed (error code ", refused.Message, StringComparison.Ordinal);

            await UpsertAsync(collection, CompactedConcepts, CompactedConcepts + 20).WaitAsync(Generous);
            await database.CloseAsync(checkpoint: true).AsTask().WaitAsync(Generous);
        }

        Heal(failing);
        await AssertReopensWithAsync(options, CompactedConcepts + 20);
    }

    // A store out of service is left undisposed (work may still run in it), and that work went on
    // writing its log files by their paths: after a drop, into the folder of a collection created
    // under the same name. Here a store write is held in FASTER's open of a log file (a FIFO,
    // which open waits on until a reader comes) until the collection is dropped and created again.
    [Fact]
    public async Task A_store_out_of_service_writes_nothing_into_a_collection_created_in_its_place()
    {
        using var folder = new TempDirectory();
        DatabaseOptions options = SmallStoreOptions(folder.Path, TimeSpan.FromSeconds(1));
        string fifo = Path.Combine(folder.Path, "held-write");
        Assert.Equal(0, MakeFifo(fifo, 0x180));
        await using AssocDatabase database = AssocDatabase.Open(options);
        database.CreateCollection(new CollectionSpec("c", 64, Metric.Cosine)).AssertOk();
        Collection collection = database.GetCollection("c").AssertOk();
        string stateFolder = Path.Combine(collection.Directory, "state");
        File.CreateSymbolicLink(Path.Combine(stateFolder, "hlog.log.1"), fifo);

        // About 600 KB of records: the store's write holds at its second file's page.
        await UpsertAsync(collection, 0, 2000, batchSize: 2000).WaitAsync(Generous);
        (await database.DropCollectionAsync("c").WaitAsync(Generous)).AssertOk();
        database.CreateCollection(new CollectionSpec("c", 64, Metric.Cosine)).AssertOk();
        Assert.Empty(Directory.GetFiles(stateFolder, "hlog.log.*"));

        // The held write goes on (FASTER's open then fails: it opens its files unbuffered). Opening
        // the reader end waits for the writer, which a store write never begun would never be.
        Task<FileStream> reader = Task.Factory.StartNew(() => new FileStream(fifo, FileMode.Open, FileAccess.Read), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(await Task.WhenAny(reader, Task.Delay(Generous)) == reader, "no store write was held at the FIFO");
        using (await reader)
        {
            await Task.Delay(TimeSpan.FromSeconds(3));
        }

        Assert.Empty(Directory.GetFiles(stateFolder, "hlog.log.*"));
    }

    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MakeFifo(string path, uint mode);

    /// <summary>Work given up on in a store out of service ends, or at least stops using the CPU.</summary>
    [Collection(nameof(AloneInTheProcess))]
    public sealed class GivenUpWork
    {
        // FASTER's wait for a compaction's flush (LogAccessor.ShiftReadOnlyAddress) spins on
        // Thread.Yield until the pages are written; given up on after a failed page write, it kept a
        // core busy until the process exited (about 60 % of one on this loaded machine).
        [Fact]
        public async Task A_compaction_given_up_on_leaves_no_core_busy()
        {
            // Threads busy already (the test host's, or work that other tests gave up on) are not
            // this test's.
            HashSet<int> busyBefore = await BusyThreadsAsync();
            using var folder = new TempDirectory();
            DatabaseOptions options = SmallStoreOptions(folder.Path, TimeSpan.FromMinutes(10));
            await using (AssocDatabase database = AssocDatabase.Open(options))
            {
                await CompactOnAFailedFlushAsync(database);
            }

            // Busy over two windows in a row: work that was finishing when the first began is not.
            HashSet<int> busy = await BusyThreadsAsync();
            busy.IntersectWith(await BusyThreadsAsync());
            busy.ExceptWith(busyBefore);
            Assert.True(busy.Count == 0, $"threads {string.Join(", ", busy)} stayed busy after the compaction was given up on");
        }

        /// <summary>The threads of this process that use more than 2 % of a core over three seconds: a
        /// thread spinning on Thread.Yield gets about 10 % here, where some 20 threads of other processes
        /// share the 2 cores; an idle one, none.</summary>
        private static async Task<HashSet<int>> BusyThreadsAsync()
        {
            Dictionary<int, TimeSpan> before = ThreadTimes();
            var clock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(3));
            return [.. ThreadTimes()
                .Where(thread => (thread.Value - before.GetValueOrDefault(thread.Key)) / clock.Elapsed > 0.02)
                .Select(thread => thread.Key)];
        }

        private static Dictionary<int, TimeSpan> ThreadTimes()
        {
            using Process process = Process.GetCurrentProcess();
            var times = new Dictionary<int, TimeSpan>();
            foreach (ProcessThread thread in process.Threads)
            {
                try
                {
                    times[thread.Id] = thread.TotalProcessorTime;
                }
                catch (InvalidOperationException)
                {
                    // Ended meanwhile.
                }
            }

            return times;
        }
    }

    private static string ConceptName(int i) => $"concept-{i}";

    /// <summary>Concepts of the collection <see cref="CompactOnAFailedFlushAsync"/> makes.</summary>
    private const int CompactedConcepts = 5000;

    /// <summary>
    /// Creates collection "c" with <see cref="CompactedConcepts"/> concepts, checkpointed, then
    /// rewrites every one, so that the next checkpoint compacts, flushing first the pages still in
    /// memory, whose files are made to fail: that checkpoint is refused, the store out of service.
    /// </summary>
    private static async Task<(Collection Collection, string[] Failing, EngineError Refused)> CompactOnAFailedFlushAsync(AssocDatabase database)
    {
        database.CreateCollection(new CollectionSpec("c", 8, Metric.Cosine)).AssertOk();
        Collection collection = database.GetCollection("c").AssertOk();
        string stateFolder = Path.Combine(collection.Directory, "state");
        await UpsertAsync(collection, 0, CompactedConcepts, version: 0);
        (await collection.CheckpointAsync()).AssertOk();
        await UpsertAsync(collection, 0, CompactedConcepts, version: 1);
        string[] failing = FailFilesFrom(stateFolder, Directory.GetFiles(stateFolder, "hlog.log.*").Length);
        EngineError refused = (await collection.CheckpointAsync().WaitAsync(Generous)).AssertError(ErrorCode.FailedPrecondition, "collection");
        return (collection, failing, refused);
    }

    /// <summary>Upserts concepts in batches (of 20 unless <paramref name="batchSize"/> says); a
    /// <paramref name="version"/> gives them vectors of their own (else their names' vectors), so
    /// that a later version rewrites them.</summary>
    private static async Task UpsertAsync(Collection collection, int from, int to, int? version = null, int batchSize = 20)
    {
        for (int start = from; start < to; start += batchSize)
        {
            ConceptInput[] batch = [.. Enumerable.Range(start, Math.Min(batchSize, to - start)).Select(i => new ConceptInput(
                ConceptName(i), version is int v ? [.. Enumerable.Range(0, collection.Dimension).Select(d => (float)(i + v + d + 1))] : null))];
            (await collection.UpsertConceptsAsync(batch)).AssertOk();
        }
    }

    private void AssertRecovers(long logAddress, int records) => SmallStateStore.AssertRecovers(_state, logAddress, records);

    /// <summary>FASTER's checkpoint files on local disk, but while <see cref="Failing"/> the log
    /// checkpoint's metadata goes to /dev/full, as on a full disk (the data flush before it fits).</summary>
    private sealed class FullDiskForLogMetadata : INamedDeviceFactory
    {
        private readonly LocalStorageNamedDeviceFactory _local = new();
        private readonly string _fullDevice;

        public FullDiskForLogMetadata(string folder)
        {
            // FASTER names a device's file by appending its segment, ".0".
            _fullDevice = Path.Combine(folder, "full");
            File.CreateSymbolicLink(_fullDevice + ".0", "/dev/full");
        }

        public bool Failing { get; set; }

        public void Initialize(string baseName) => _local.Initialize(baseName);

        public IDevice Get(FileDescriptor fileInfo) =>
            Failing && fileInfo.fileName == "info.dat" && fileInfo.directoryName.StartsWith("cpr-checkpoints", StringComparison.Ordinal)
                // Buffered, so that the open succeeds and the write itself fails with ENOSPC.
                ? Devices.CreateLogDevice(_fullDevice, disableFileBuffering: false)
                : _local.Get(fileInfo);

        public IEnumerable<FileDescriptor> ListContents(string path) => _local.ListContents(path);

        public void Delete(FileDescriptor fileInfo) => _local.Delete(fileInfo);
    }

    /// <summary>FASTER's checkpoint files on local disk, but while <see cref="Failing"/> the hash
    /// table's first write lands as zeros and completes with ENOSPC (28): the file reaches its full
    /// length, as when a later write at a higher offset lands after an earlier one failed.</summary>
    private sealed class HoleInHashTable : INamedDeviceFactory
    {
        private readonly LocalStorageNamedDeviceFactory _local = new();

        public bool Failing { get; set; }

        /// <summary>Whether a write was failed.</summary>
        public bool Failed { get; private set; }

        public void Initialize(string baseName) => _local.Initialize(baseName);

        public IDevice Get(FileDescriptor fileInfo) =>
            Failing && fileInfo.fileName == "ht.dat" ? new ZerosAtStart(_local.Get(fileInfo), this) : _local.Get(fileInfo);

        public IEnumerable<FileDescriptor> ListContents(string path) => _local.ListContents(path);

        public void Delete(FileDescriptor fileInfo) => _local.Delete(fileInfo);

        private sealed class ZerosAtStart(IDevice files, HoleInHashTable owner) : ForwardingDevice(files)
        {
            private const uint NoSpace = 28;

            public override unsafe void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
            {
                if (alignedDestinationAddress != 0)
                {
                    base.WriteAsync(alignedSourceAddress, alignedDestinationAddress, numBytesToWrite, callback, context);
                    return;
                }

                void* zeros = NativeMemory.AlignedAlloc(numBytesToWrite, 4096);
                NativeMemory.Clear(zeros, numBytesToWrite);
                owner.Failed = true;
                base.WriteAsync((IntPtr)zeros, 0, numBytesToWrite, (_, _, c) =>
                {
                    NativeMemory.AlignedFree(zeros);
                    callback(NoSpace, 0, c);
                }, context);
            }
        }
    }

    /// <summary>FASTER's checkpoint files on local disk, but while <see cref="Refusing"/> none can be
    /// deleted (a folder whose permissions changed, a busy network share).</summary>
    private sealed class UndeletableCheckpoints : INamedDeviceFactory
    {
        private readonly LocalStorageNamedDeviceFactory _local = new();

        public bool Refusing { get; set; }

        public void Initialize(string baseName) => _local.Initialize(baseName);

        public IDevice Get(FileDescriptor fileInfo) => _local.Get(fileInfo);

        public IEnumerable<FileDescriptor> ListContents(string path) => _local.ListContents(path);

        public void Delete(FileDescriptor fileInfo)
        {
            if (Refusing)
            {
                throw new IOException("the disk refuses deletes");
            }

            _local.Delete(fileInfo);
        }
    }
}
