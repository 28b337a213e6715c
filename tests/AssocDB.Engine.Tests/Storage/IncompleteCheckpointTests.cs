using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// A crash between a state-store checkpoint's metadata write and its read-back leaves that checkpoint
// incomplete beside the whole one before it, with the write-ahead log still reaching back to the
// older one (neither is dropped before the new checkpoint is read back whole). The open refused
// such a collection; it must recover from the older checkpoint and the log, and go on refusing
// where the log no longer reaches back to it.
public sealed class IncompleteCheckpointTests : DatabaseTests
{
    private const int FactsPerBatch = 100;

    private readonly TempDirectory _saved = new();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _saved.Dispose();
    }

    private static FactInput Fact(int number) => new($"a{number}", "knows", $"b{number}");

    private static async Task AddFactsAsync(Collection collection, int batch)
    {
        // A write per ten facts, so that the log holds several entries after a checkpoint.
        for (int start = batch * FactsPerBatch; start < (batch + 1) * FactsPerBatch; start += 10)
        {
            (await collection.AddFactsAsync([.. Enumerable.Range(start, 10).Select(Fact)])).AssertOk();
        }
    }

    private static string CheckpointsFolder(string collection, string part) => Path.Combine(collection, "state", "checkpoints", part);

    /// <summary>
    /// Batch 0 checkpointed (unless <paramref name="firstCheckpoint"/>: then the crash is in the
    /// collection's first checkpoint), batch 1 in the log only, then a checkpoint of both (which
    /// replaces the first and truncates the log), and files put back as a crash in that checkpoint,
    /// after its metadata reached disk and before it was read back, leaves them: the first
    /// checkpoint's folders, the state store's log file without the new checkpoint's pages, and
    /// (when <paramref name="logKeptBack"/>) the write-ahead log not yet truncated. Returns the
    /// collection's folder and both checkpoints' tokens (the older null when there is none).
    /// </summary>
    private async Task<(string Folder, string? Older, string Incomplete)> CrashedInCheckpointAsync(bool logKeptBack, bool firstCheckpoint = false)
    {
        Collection collection = Db.Create();
        (await collection.DefineRelationAsync(new RelationSpec("knows"))).AssertOk();
        await AddFactsAsync(collection, 0);
        if (!firstCheckpoint)
        {
            (await collection.CheckpointAsync()).AssertOk();
        }

        await AddFactsAsync(collection, 1);
        await Db.Database.CloseAsync(checkpoint: false);

        string folder = collection.Directory;
        string? older = firstCheckpoint
            ? null
            : Path.GetFileName(Assert.Single(Directory.GetDirectories(CheckpointsFolder(folder, "cpr-checkpoints"))));
        CopyFolder(folder, _saved.Path);

        await Db.ReopenAsync(checkpointOnClose: false);
        (await Db.Get().CheckpointAsync()).AssertOk();
        string incomplete = Path.GetFileName(Assert.Single(Directory.GetDirectories(CheckpointsFolder(folder, "cpr-checkpoints"))));
        Assert.NotEqual(older, incomplete);
        await Db.Database.CloseAsync(checkpoint: false);

        foreach (string part in older is null ? [] : new[] { "cpr-checkpoints", "index-checkpoints" })
        {
            string restored = Path.Combine(CheckpointsFolder(folder, part), older!);
            CopyFolder(Path.Combine(CheckpointsFolder(_saved.Path, part), older!), restored);
            Directory.SetLastWriteTimeUtc(restored, Directory.GetLastWriteTimeUtc(Path.Combine(CheckpointsFolder(folder, part), incomplete)).AddMinutes(-1));
        }

        // Before its first checkpoint the store may not have written its log file at all.
        string savedStoreLog = Path.Combine(_saved.Path, "state", "hlog.log.0");
        string storeLog = Path.Combine(folder, "state", "hlog.log.0");
        if (File.Exists(savedStoreLog))
        {
            File.Copy(savedStoreLog, storeLog, overwrite: true);
        }
        else
        {
            File.Delete(storeLog);
        }

        if (logKeptBack)
        {
            Directory.Delete(Path.Combine(folder, "wal"), recursive: true);
            CopyFolder(Path.Combine(_saved.Path, "wal"), Path.Combine(folder, "wal"));
        }

        return (folder, older, incomplete);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }

        foreach (string folder in Directory.GetDirectories(from))
        {
            CopyFolder(folder, Path.Combine(to, Path.GetFileName(folder)));
        }
    }

    private static void AssertFacts(Collection collection, int count)
    {
        Assert.Equal(count, collection.Describe().AssertOk().FactCount);
        for (int number = 0; number < count; number++)
        {
            Assert.True(collection.Neighbors($"a{number}", "knows").AssertOk().Any(edge => edge.Fact == new FactKey($"a{number}", "knows", $"b{number}")), $"fact {number} is missing");
        }
    }

    [Fact]
    public async Task An_incomplete_newest_checkpoint_gives_way_to_the_whole_one_before_it_and_the_log()
    {
        (string folder, string? older, string incomplete) = await CrashedInCheckpointAsync(logKeptBack: true);

        var logs = new RecordedLogs();
        await using (AssocDatabase database = AssocDatabase.Open(Db.Options with { CheckpointOnClose = false }, logs))
        {
            Collection collection = database.GetCollection("test").AssertOk();
            AssertFacts(collection, 2 * FactsPerBatch);
            await AddFactsAsync(collection, 2);
        }

        string warning = Assert.Single(logs.Messages, message => message.Contains(incomplete, StringComparison.Ordinal));
        Assert.Contains("recovered from the checkpoint before its newest", warning, StringComparison.Ordinal);
        Assert.Contains("hlog.log.0 holds", warning, StringComparison.Ordinal);

        // Set aside, so the next open recovers the older checkpoint as the latest, without a word.
        string setAside = Path.Combine(folder, "state", "checkpoints", "incomplete", incomplete);
        Assert.True(Directory.Exists(Path.Combine(setAside, "cpr-checkpoints")), "the incomplete checkpoint was not set aside");
        Assert.Equal([older], Directory.GetDirectories(CheckpointsFolder(folder, "cpr-checkpoints")).Select(Path.GetFileName));
        logs = new RecordedLogs();
        await using (AssocDatabase database = AssocDatabase.Open(Db.Options with { CheckpointOnClose = false }, logs))
        {
            Collection collection = database.GetCollection("test").AssertOk();
            AssertFacts(collection, 3 * FactsPerBatch);
            (await collection.CheckpointAsync()).AssertOk();
        }

        Assert.DoesNotContain(logs.Messages, message => message.Contains("before its newest", StringComparison.Ordinal));
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 3 * FactsPerBatch);
    }

    // The write-ahead log was truncated after the newest checkpoint, so it lacks the entries
    // between the older checkpoint and that one: recovering the older one would lose them.
    [Fact]
    public async Task An_incomplete_newest_checkpoint_still_stops_the_open_when_the_log_no_longer_reaches_back_to_the_one_before()
    {
        (string folder, string? older, string incomplete) = await CrashedInCheckpointAsync(logKeptBack: false);

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains($"checkpoint {incomplete} is incomplete", error.Message, StringComparison.Ordinal);
        Assert.Contains($"the write-ahead log does not hold every entry after the whole checkpoint {older} before it", error.Message, StringComparison.Ordinal);
        Assert.Equal(
            new[] { incomplete, older }.Order(StringComparer.Ordinal),
            Directory.GetDirectories(CheckpointsFolder(folder, "cpr-checkpoints")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    // The log is truncated only once a checkpoint is read back whole, so a collection whose first
    // checkpoint a crash cut short still has every entry in its log. Its open was refused, though
    // nothing was lost; it must rebuild from the log.
    [Fact]
    public async Task An_incomplete_only_checkpoint_gives_way_to_the_whole_log()
    {
        (string folder, _, string incomplete) = await CrashedInCheckpointAsync(logKeptBack: true, firstCheckpoint: true);
        // A log file past what the rebuilt store writes: it goes with the checkpoint, lest a cut-short
        // checkpoint of the rebuilt store pass for whole on its length.
        string stale = Path.Combine(folder, "state", "hlog.log.7");
        await File.WriteAllBytesAsync(stale, new byte[4096]);

        var logs = new RecordedLogs();
        await using (AssocDatabase database = AssocDatabase.Open(Db.Options with { CheckpointOnClose = false }, logs))
        {
            Collection collection = database.GetCollection("test").AssertOk();
            AssertFacts(collection, 2 * FactsPerBatch);
            await AddFactsAsync(collection, 2);
            (await collection.CheckpointAsync()).AssertOk();
        }

        string warning = Assert.Single(logs.Messages, message => message.Contains(incomplete, StringComparison.Ordinal));
        Assert.Contains("rebuilt from its whole log", warning, StringComparison.Ordinal);
        string setAside = Path.Combine(folder, "state", "checkpoints", "incomplete", incomplete);
        Assert.True(Directory.Exists(Path.Combine(setAside, "cpr-checkpoints")), "the incomplete checkpoint was not set aside");
        Assert.True(File.Exists(Path.Combine(setAside, "hlog.log.7")) && !File.Exists(stale), "the store's old log files were not set aside");

        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 3 * FactsPerBatch);
    }

    // Truncated after the checkpoint, or lost: a wal folder missing (a partial restore, say) is
    // opened as a new, empty log, which holds every entry from its first, none; rebuilt from it,
    // the collection opened empty. It must reach the address the incomplete checkpoint covers.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_incomplete_only_checkpoint_still_stops_the_open_when_the_log_was_truncated_or_lost(bool lost)
    {
        (string folder, _, string incomplete) = await CrashedInCheckpointAsync(logKeptBack: lost, firstCheckpoint: true);
        if (lost)
        {
            Directory.Delete(Path.Combine(folder, "wal"), recursive: true);
        }

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains($"checkpoint {incomplete} is incomplete", error.Message, StringComparison.Ordinal);
        Assert.Contains("no whole checkpoint precedes it while the write-ahead log does not hold every entry from its first up to address ", error.Message, StringComparison.Ordinal);
        Assert.Equal([incomplete], Directory.GetDirectories(CheckpointsFolder(folder, "cpr-checkpoints")).Select(Path.GetFileName));
    }
}
