using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// Files damaged on disk (deleted, cut short): the open must refuse, naming what is damaged, rather
// than open a collection that silently lacks what the damaged file held.
public sealed class DamagedFilesTests : DatabaseTests
{
    private const int Facts = 2000;

    /// <summary>A collection of <see cref="Facts"/> facts, closed with a checkpoint (so its log holds
    /// nothing to replay); returns its folder.</summary>
    private async Task<string> CheckpointedCollectionAsync()
    {
        Collection collection = Db.Create();
        (await collection.DefineRelationAsync(new RelationSpec("knows"))).AssertOk();
        (await collection.AddFactsAsync([.. Enumerable.Range(0, Facts).Select(i => new FactInput($"a{i}", "knows", $"b{i}"))])).AssertOk();
        await Db.Database.CloseAsync(checkpoint: true);
        return collection.Directory;
    }

    // FASTER recreated a missing log file empty (and read a short one as far as it went) and still
    // reported the checkpoint recovered: the collection opened with none of its facts.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_checkpoint_whose_state_log_file_is_missing_or_short_stops_the_open(bool cutShort)
    {
        string logFile = Path.Combine(await CheckpointedCollectionAsync(), "state", "hlog.log.0");
        long length = new FileInfo(logFile).Length;
        if (cutShort)
        {
            using var file = new FileStream(logFile, FileMode.Open);
            file.SetLength(length / 2);
        }
        else
        {
            File.Delete(logFile);
        }

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains(logFile, error.Message, StringComparison.Ordinal);
        Assert.Contains(cutShort ? $"holds {length / 2} bytes" : "is missing", error.Message, StringComparison.Ordinal);

        // Refused before FASTER opened the store, which would have recreated the file.
        Assert.Equal(cutShort, File.Exists(logFile));
    }

    // layout.json came with the manifest's LogPageSizeBits, so a checkpointed store under a manifest
    // with it had a layout file. Without it the store was taken for one from before layouts were
    // kept and reopened with FASTER's 1 GiB files, which misread the log of a store over 64 MiB,
    // and the guess was written as its layout.
    [Fact]
    public async Task A_checkpointed_state_store_without_its_layout_file_stops_the_open()
    {
        string layout = Path.Combine(await CheckpointedCollectionAsync(), "state", "layout.json");
        File.Delete(layout);

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains($"{layout} is missing", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(layout));
    }

    // The errors of a damaged collection (here a lost layout file) did not say which collection,
    // so a server that would not start left the user to search every collection's files.
    [Fact]
    public async Task An_error_opening_a_collection_names_it_and_its_folder_and_keeps_the_original()
    {
        Db.Create("whole");
        string damaged = await CheckpointedCollectionAsync();
        File.Delete(Path.Combine(damaged, "state", "layout.json"));

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.StartsWith($"collection 'test' (in {damaged}) could not be opened: ", error.Message, StringComparison.Ordinal);
        InvalidDataException original = Assert.IsType<InvalidDataException>(error.InnerException);
        Assert.EndsWith(original.Message, error.Message, StringComparison.Ordinal);
    }

    // A damaged manifest failed the open with a bare JSON error.
    [Fact]
    public async Task A_damaged_manifest_stops_the_open_naming_the_folder()
    {
        string damaged = await CheckpointedCollectionAsync();
        File.WriteAllText(Path.Combine(damaged, "collection.json"), "{\"Name\": \"te");

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.StartsWith($"the collection in {damaged} could not be opened: ", error.Message, StringComparison.Ordinal);
        Assert.IsType<System.Text.Json.JsonException>(error.InnerException);
    }

    // The manifest's format was written but never read: a version would have misread files of a
    // newer format as its own. A newer one is refused by name; an older one is raised on open,
    // before anything is written in the current format.
    [Fact]
    public async Task A_collection_of_a_newer_format_stops_the_open_and_an_older_one_is_raised()
    {
        string folder = await CheckpointedCollectionAsync();
        string manifest = Path.Combine(folder, "collection.json");
        const int Current = CollectionManifest.CurrentFormatVersion;
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace($"\"FormatVersion\": {Current}", "\"FormatVersion\": 1", StringComparison.Ordinal));
        Assert.Contains("\"FormatVersion\": 1", File.ReadAllText(manifest), StringComparison.Ordinal);

        await using (AssocDatabase database = AssocDatabase.Open(Db.Options))
        {
            Assert.Equal(Facts, database.GetCollection("test").AssertOk().Describe().AssertOk().FactCount);
        }

        Assert.Contains($"\"FormatVersion\": {Current}", File.ReadAllText(manifest), StringComparison.Ordinal);
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace($"\"FormatVersion\": {Current}", $"\"FormatVersion\": {Current + 1}", StringComparison.Ordinal));

        NotSupportedException error = Assert.Throws<NotSupportedException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains($"is of format {Current + 1}, written by a newer AssocDB; this version reads formats up to {Current}", error.Message, StringComparison.Ordinal);

        // Served beside the others, it was listed as damaged and nameless, and its refusal invited a
        // drop: it keeps its name, and the refusal says to open it with a newer version.
        await using AssocDatabase lenient = AssocDatabase.Open(Db.Options with { RequireAllCollections = false });
        CollectionInfo listed = Assert.Single(lenient.ListCollections());
        Assert.Equal(("test", CollectionState.Unavailable), (listed.Name, listed.State));
        EngineError refused = lenient.GetCollection("test").AssertError(ErrorCode.FailedPrecondition, "collection");
        Assert.Contains("its files are not damaged: open the data folder with the AssocDB version that wrote them, or a later one", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("drop", refused.Message, StringComparison.Ordinal);
    }

    // A checkpoint a crash interrupted before its metadata was written is passed over by FASTER,
    // which recovers the one before; the check of the checkpoint's files must pass it over too.
    [Fact]
    public async Task A_newer_checkpoint_whose_metadata_never_reached_disk_is_passed_over()
    {
        string state = Path.Combine(await CheckpointedCollectionAsync(), "state");
        string checkpoints = Path.Combine(state, "checkpoints", "cpr-checkpoints");
        string interrupted = Path.Combine(checkpoints, Guid.NewGuid().ToString());
        Directory.CreateDirectory(interrupted);
        File.WriteAllBytes(Path.Combine(interrupted, "info.dat.0"), []);
        Directory.SetLastWriteTimeUtc(interrupted, DateTime.UtcNow.AddMinutes(1));

        await using AssocDatabase database = AssocDatabase.Open(Db.Options);
        Assert.Equal(Facts, database.GetCollection("test").AssertOk().Describe().AssertOk().FactCount);
    }
}
