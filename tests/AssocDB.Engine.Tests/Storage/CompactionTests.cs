using System.Text.Json.Nodes;
using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// Guards the state store's compaction: a checkpoint compacts the store's log once updates and
// deletes have left at least half of it superseded (and at least one log file's worth), the disk
// comes back a file at a time, and a reopen finds exactly the latest state; a log of inserts is
// never rewritten; the estimate of superseded bytes survives a restart; and a store keeps the page
// and file sizes it was written with (stores from before they were kept: FASTER's default size).
public sealed class CompactionTests : DatabaseTests
{
    // 4 MiB log files (TestDatabase's default); vectors of 256 floats make ~1.1 KB records.
    private const int Dimension = 256;

    private static float[] Vector(int concept, int version) =>
        Enumerable.Range(0, Dimension).Select(i => (float)((concept * 31) + (version * 7) + i)).ToArray();

    private static async Task WriteVersionAsync(Collection collection, int concepts, int version)
    {
        for (int start = 0; start < concepts; start += 500)
        {
            var batch = Enumerable.Range(start, Math.Min(500, concepts - start)).Select(c => new ConceptInput($"c{c}", Vector(c, version))).ToList();
            (await collection.UpsertConceptsAsync(batch)).AssertOk();
        }
    }

    private string StateFolder(string collection) => Path.Combine(Db.Get(collection).Directory, "state");

    private string FirstLogFile(string collection) => Path.Combine(StateFolder(collection), "hlog.log.0");

    private long LogFileBytes(string collection) =>
        Directory.EnumerateFiles(StateFolder(collection), "hlog.log.*").Sum(file => new FileInfo(file).Length);

    /// <summary>Whether a log file is deleted within 5 s: FASTER deletes the files a checkpoint
    /// truncated on a thread-pool task after the checkpoint returns.</summary>
    private static async Task<bool> DeletedAsync(string file)
    {
        for (int attempt = 0; attempt < 250 && File.Exists(file); attempt++)
        {
            await Task.Delay(20);
        }

        return !File.Exists(file);
    }

    /// <summary>Whether a log file is still there half a second on, by when a truncation would have
    /// deleted it.</summary>
    private static async Task<bool> KeptAsync(string file)
    {
        await Task.Delay(500);
        return File.Exists(file);
    }

    [Fact]
    public async Task Superseded_records_are_compacted_at_a_checkpoint_and_the_latest_state_reopens()
    {
        // Each checkpoint makes the stored records read-only, so each new version of 1,000 concepts
        // (~1.1 MB) supersedes the last in the log; by the fifth, half the log is dead.
        Collection collection = Db.Create("churn", Dimension);
        (await collection.DefineRelationAsync(new RelationSpec("links"))).AssertOk();
        (await collection.AddFactsAsync([new FactInput("c1", "links", "c2"), new FactInput("c2", "links", "c3"), new FactInput("gone", "links", "c1")])).AssertOk();
        for (int version = 0; version < 6; version++)
        {
            await WriteVersionAsync(collection, 1000, version);
            if (version == 3)
            {
                (await collection.RemoveFactsAsync([new FactKey("c2", "links", "c3")])).AssertOk();
                (await collection.DeleteConceptsAsync(["gone"])).AssertOk();
            }

            await collection.CheckpointAsync();
            if (version == 3)
            {
                // 3.3 MB dead: less than one log file.
                Assert.True(await KeptAsync(FirstLogFile("churn")), "compacted before a log file's worth was dead");
            }
        }

        Assert.True(await DeletedAsync(FirstLogFile("churn")), "no checkpoint compacted the log and freed its first file");
        long onDisk = LogFileBytes("churn");
        Assert.True(onDisk <= 2 * (1L << 22), $"log files hold {onDisk} bytes after compaction; 6 versions wrote 6.5 MB");

        await Db.ReopenAsync(checkpointOnClose: false);
        Collection reopened = Db.Get("churn");
        Assert.Equal(1000, reopened.Describe().AssertOk().ConceptCount);
        foreach (int c in new[] { 0, 1, 500, 999 })
        {
            Assert.Equal(Vector(c, 5), reopened.GetConcept($"c{c}").AssertOk().Vector);
        }

        Assert.False(reopened.GetConcept("gone").IsOk);
        Assert.Equal("c2", Assert.Single(reopened.Related("c1", "links").AssertOk()).Concept);
        Assert.Empty(reopened.Related("c2", "links").AssertOk());
    }

    [Fact]
    public async Task A_log_of_inserts_or_of_updates_in_its_mutable_tail_is_never_rewritten()
    {
        // 3.3 MB of inserts, then 1,000 concepts inserted after a checkpoint and rewritten 10 times
        // before the next (11 MB of updates): FASTER updates those in place, so nothing in the log
        // is dead, and counting every update would have compacted it.
        Collection collection = Db.Create("inserts", Dimension);
        await WriteVersionAsync(collection, 3000, 0);
        await collection.CheckpointAsync();
        var newest = Enumerable.Range(0, 1000).ToList();
        for (int version = 0; version <= 10; version++)
        {
            (await collection.UpsertConceptsAsync(newest.Select(c => new ConceptInput($"n{c}", Vector(c, version))).ToList())).AssertOk();
        }

        await collection.CheckpointAsync();
        Assert.True(await KeptAsync(FirstLogFile("inserts")), "a log without dead records was compacted");
    }

    [Fact]
    public async Task Rewrites_that_outgrow_the_mutable_tail_within_one_interval_all_count()
    {
        // A 4 MiB store memory (1 MiB pages, 3.6 MiB mutable) and 1 MiB files: three rewrites of
        // 4.4 MB in one interval are copies, not updates in place. Counting each record once would
        // see 4.4 MB dead in a 17 MB log and never compact it.
        await using var small = new TestDatabase(stateMemoryBytes: 1L << 22, stateSegmentBytes: 1L << 20);
        Collection collection = small.Create("overflow", Dimension);
        await WriteVersionAsync(collection, 4000, 0);
        await collection.CheckpointAsync();
        for (int version = 1; version <= 3; version++)
        {
            await WriteVersionAsync(collection, 4000, version);
        }

        await collection.CheckpointAsync();
        Assert.True(await DeletedAsync(Path.Combine(collection.Directory, "state", "hlog.log.0")), "the rewrites were not counted");
        Assert.Equal(Vector(3999, 3), collection.GetConcept("c3999").AssertOk().Vector);
    }

    [Fact]
    public async Task The_superseded_estimate_survives_a_restart()
    {
        // 3.3 MB superseded before the restart: under one 4 MiB log file, so no compaction yet.
        Collection collection = Db.Create("restart", Dimension);
        await WriteVersionAsync(collection, 3000, 0);
        await collection.CheckpointAsync();
        await WriteVersionAsync(collection, 3000, 1);
        await collection.CheckpointAsync();
        Assert.True(await KeptAsync(FirstLogFile("restart")), "compacted before a log file's worth was dead");

        // 1.6 MB more after it: only with the 3.3 MB carried over is a compaction due.
        await Db.ReopenAsync(checkpointOnClose: false);
        collection = Db.Get("restart");
        await WriteVersionAsync(collection, 1500, 2);
        await collection.CheckpointAsync();
        Assert.True(await DeletedAsync(FirstLogFile("restart")), "the estimate from before the restart was lost");
        Assert.Equal(Vector(1499, 2), collection.GetConcept("c1499").AssertOk().Vector);
        Assert.Equal(Vector(1500, 1), collection.GetConcept("c1500").AssertOk().Vector);
    }

    /// <summary>A checkpointed collection "legacy" of 5.5 MB (past the first file, were the files
    /// 4 MiB) in FASTER's default 1 GiB files, made to look as written before sizes were kept: no
    /// layout, no page size in the manifest. Returns its folder.</summary>
    private static async Task<string> LegacyCollectionAsync(TestDatabase legacy)
    {
        Collection collection = legacy.Create("legacy", Dimension);
        await WriteVersionAsync(collection, 5000, 0);
        await legacy.ReopenAsync();

        File.Delete(Path.Combine(collection.Directory, "state", "layout.json"));
        string manifestPath = Path.Combine(collection.Directory, "collection.json");
        JsonObject manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        Assert.True(manifest.Remove("LogPageSizeBits"));
        File.WriteAllText(manifestPath, manifest.ToJsonString());
        return collection.Directory;
    }

    [Fact]
    public async Task A_store_from_before_layouts_were_kept_opens_with_fasters_default_file_size()
    {
        await using var legacy = new TestDatabase(stateSegmentBytes: 1L << 30);
        string directory = await LegacyCollectionAsync(legacy);

        // Reopened with another file size for new stores. The sizes it was written with are kept
        // from then on.
        await legacy.ReopenAsync(checkpointOnClose: false, stateSegmentBytes: 1L << 22);

        Assert.Equal(5000, legacy.Get("legacy").Describe().AssertOk().ConceptCount);
        Assert.Equal(Vector(4999, 0), legacy.Get("legacy").GetConcept("c4999").AssertOk().Vector);
        Assert.Equal(1L << 30, JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "state", "layout.json")))!["SegmentBytes"]!.GetValue<long>());
        Assert.Equal(22, JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "collection.json")))!["LogPageSizeBits"]!.GetValue<int>());
    }

    // A checkpointed store without a layout under a manifest with the page size is refused as
    // damaged, so the manifest records the page only once the store has recorded its layout: the
    // other way round, an open that stopped in between left the collection refused for good.
    [Fact]
    public async Task A_store_from_before_layouts_were_kept_whose_layout_could_not_be_recorded_opens_once_it_can()
    {
        await using var legacy = new TestDatabase(stateSegmentBytes: 1L << 30);
        string directory = await LegacyCollectionAsync(legacy);
        string layoutStaging = Path.Combine(directory, "state", "layout.json.tmp");
        Directory.CreateDirectory(layoutStaging);
        await Assert.ThrowsAnyAsync<UnauthorizedAccessException>(() => legacy.ReopenAsync(checkpointOnClose: false, stateSegmentBytes: 1L << 22));

        Directory.Delete(layoutStaging);
        await legacy.ReopenAsync(checkpointOnClose: false, stateSegmentBytes: 1L << 22);

        Assert.Equal(5000, legacy.Get("legacy").Describe().AssertOk().ConceptCount);
        Assert.Equal(Vector(4999, 0), legacy.Get("legacy").GetConcept("c4999").AssertOk().Vector);
    }

    [Fact]
    public async Task A_checkpointed_store_keeps_its_page_when_the_memory_option_shrinks()
    {
        // Read with smaller pages, a FASTER log written with 4 MiB pages is misread (it crashed the
        // process with an access violation).
        Collection collection = Db.Create("pages", Dimension);
        await WriteVersionAsync(collection, 5000, 0);
        await Db.ReopenAsync(stateMemoryBytes: 1L << 20);
        await Db.ReopenAsync(checkpointOnClose: false, stateMemoryBytes: 1L << 20);

        Assert.Equal(5000, Db.Get("pages").Describe().AssertOk().ConceptCount);
        Assert.Equal(Vector(4999, 0), Db.Get("pages").GetConcept("c4999").AssertOk().Vector);
    }
}
