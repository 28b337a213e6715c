using System.IO.Enumeration;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

/// <summary>
/// One collection that cannot be opened leaves the others served: the database opens, the bad one
/// is listed as unavailable with its reason, every operation naming it is refused naming it (never
/// NotFound: its data exists), a create of its name is refused, and a drop deletes its folder.
/// With <see cref="DatabaseOptions.RequireAllCollections"/> the open is refused as before.
/// </summary>
// The open threw on the first collection folder that failed, so one damaged collection stopped
// the whole database (and the server, exit 1) until a user repaired or moved it by hand.
public sealed class UnavailableCollectionTests : DatabaseTests
{
    /// <summary>Far longer than an open or close of these small collections takes.</summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(30);

    private string _brokenFolder = "";

    /// <summary>The options the database is reopened with: serving the healthy collections (the
    /// fixture's are strict, for the tests that read a damaged collection's open error).</summary>
    private DatabaseOptions Lenient => Db.Options with { RequireAllCollections = false };

    public override async Task InitializeAsync()
    {
        foreach (string name in new[] { "healthy", "broken" })
        {
            Collection collection = Db.Create(name);
            (await collection.DefineRelationAsync(new RelationSpec("mother_of", InverseOf: "child_of"))).AssertOk();
            (await collection.AddFactsAsync([new FactInput("A", "mother_of", "B")])).AssertOk();
        }

        _brokenFolder = Db.Get("broken").Directory;
        // Checkpointed, so that a lost state/layout.json is refused at open.
        await Db.Database.CloseAsync(checkpoint: true);
    }

    [Fact]
    public async Task A_collection_that_fails_to_open_is_unavailable_and_the_others_are_served()
    {
        string layout = Path.Combine(_brokenFolder, "state", "layout.json");
        File.Delete(layout);
        var logs = new RecordedLogs();
        await using AssocDatabase database = AssocDatabase.Open(Lenient, logs);

        Collection healthy = database.GetCollection("healthy").AssertOk();
        Assert.Equal("A", Assert.Single(healthy.Related("B", "child_of").AssertOk()).Concept);

        CollectionInfo[] listed = [.. database.ListCollections()];
        Assert.Equal(["broken", "healthy"], listed.Select(c => c.Name));
        CollectionInfo broken = listed[0];
        Assert.Equal((CollectionState.Unavailable, Path.GetFileName(_brokenFolder), 8), (broken.State, broken.Folder, broken.Dimension));
        Assert.Contains("layout.json", broken.UnavailableReason, StringComparison.Ordinal);
        Assert.Equal((CollectionState.Available, null, 2L), (listed[1].State, listed[1].UnavailableReason, listed[1].ConceptCount));

        AssertRefused(database.GetCollection("broken").AssertError(ErrorCode.FailedPrecondition, "collection"), "layout.json");
        AssertRefused(database.DescribeCollection("broken").AssertError(ErrorCode.FailedPrecondition, "name"), "layout.json");
        AssertRefused(database.CreateCollection(new CollectionSpec("broken", 8)).AssertError(ErrorCode.FailedPrecondition, "name"), "layout.json");
        (await database.CheckpointAsync()).AssertOk();
        Assert.Contains(logs.Messages, message => message.Contains("Collection 'broken'", StringComparison.Ordinal)
            && message.Contains(_brokenFolder, StringComparison.Ordinal) && message.Contains("layout.json", StringComparison.Ordinal));
        Assert.False(File.Exists(layout), "the open wrote into the unavailable collection's folder");

        // The drop discards it; the name is free again.
        Assert.True((await database.DropCollectionAsync("broken")).AssertOk());
        Assert.False(Directory.Exists(_brokenFolder));
        Assert.Equal(["healthy"], database.ListCollections().Select(c => c.Name));
        database.GetCollection("broken").AssertError(ErrorCode.NotFound, "collection");
        database.CreateCollection(new CollectionSpec("broken", 4)).AssertOk();
    }

    // FASTER's recovery trusted a record's key length, and one flipped in the state store's log
    // ended the process with an AccessViolationException, which no handler catches: the open must
    // refuse the collection before FASTER reads it, so that the others are served.
    [Fact]
    public async Task A_collection_whose_state_log_has_a_damaged_key_length_is_unavailable_and_the_others_are_served()
    {
        string file = Path.Combine(_brokenFolder, "state", "hlog.log.0");
        long record = StateLogBytes.Find(file, RecordKind.Edge, 0).Record;
        StateLogBytes.Xor(file, record + 8, [0xFF, 0xFF, 0xFF, 0xFF]);
        await using AssocDatabase database = AssocDatabase.Open(Lenient);

        Assert.Equal("A", Assert.Single(database.GetCollection("healthy").AssertOk().Related("B", "child_of").AssertOk()).Concept);
        AssertRefused(database.GetCollection("broken").AssertError(ErrorCode.FailedPrecondition, "collection"), $"({file}, offset {record}): its key's length reads");
    }

    // A folder where FASTER opens a file made its device wait forever for a handle it never
    // created: the open never returned where it read a checkpoint's metadata, and the close never
    // returned where the write-ahead log's file had been read or written. The others reported a
    // folder as a missing or empty file, or (the log's file) opened and hung at the next close.
    [Theory]
    [InlineData("collection.json")]
    [InlineData("state/layout.json")]
    [InlineData("state/hlog.log.0")]
    [InlineData("state/checkpoints/cpr-checkpoints/*/info.dat.0")]
    [InlineData("state/checkpoints/index-checkpoints/*/ht.dat.0")]
    [InlineData("wal/fasterlog.log.0")]
    [InlineData("wal/log-commits/commit.slots")]
    public async Task A_folder_in_place_of_a_file_makes_the_collection_unavailable_at_once(string file)
    {
        string path = Directory.EnumerateFiles(_brokenFolder, "*", SearchOption.AllDirectories)
            .Single(candidate => FileSystemName.MatchesSimpleExpression(file, Path.GetRelativePath(_brokenFolder, candidate)));
        File.Delete(path);
        Directory.CreateDirectory(path);

        await using AssocDatabase database = await Task.Run(() => AssocDatabase.Open(Lenient)).WaitAsync(Prompt);
        Assert.Equal("A", Assert.Single(database.GetCollection("healthy").AssertOk().Related("B", "child_of").AssertOk()).Concept);
        CollectionInfo broken = Assert.Single(database.ListCollections(), c => c.State == CollectionState.Unavailable);
        Assert.StartsWith($"{path} is a folder, where ", broken.UnavailableReason, StringComparison.Ordinal);
        database.GetCollection("broken").AssertError(ErrorCode.FailedPrecondition, "collection");

        Assert.True((await database.DropCollectionAsync("broken").WaitAsync(Prompt)).AssertOk());
        await database.CloseAsync(checkpoint: true).AsTask().WaitAsync(Prompt);
    }

    // A folder whose manifest is lost or unreadable has no name to show: it is listed by its
    // folder, and the name it was created under still finds it (the folder is named after it). A
    // manifest of valid JSON without the collection's fields ({}) failed the whole open with an
    // ArgumentNullException.
    [Theory]
    [InlineData("lost", "holds no collection.json")]
    [InlineData("{ \"Name\": ", "JSON")]
    [InlineData("{}", "does not define a collection (its name is missing)")]
    public async Task A_collection_whose_manifest_is_lost_or_garbled_is_unavailable_by_its_folder(string content, string reason)
    {
        string manifest = Path.Combine(_brokenFolder, "collection.json");
        if (content == "lost")
        {
            File.Delete(manifest);
        }
        else
        {
            await File.WriteAllTextAsync(manifest, content);
        }

        await using AssocDatabase database = AssocDatabase.Open(Lenient);

        database.GetCollection("healthy").AssertOk();
        CollectionInfo broken = Assert.Single(database.ListCollections(), c => c.State == CollectionState.Unavailable);
        Assert.Equal(("", 0, Path.GetFileName(_brokenFolder)), (broken.Name, broken.Dimension, broken.Folder));
        Assert.Contains(reason, broken.UnavailableReason, StringComparison.Ordinal);
        AssertRefused(database.GetCollection("broken").AssertError(ErrorCode.FailedPrecondition, "collection"), content == "lost" ? "collection.json" : reason);

        Assert.True((await database.DropCollectionAsync("broken")).AssertOk());
        Assert.False(Directory.Exists(_brokenFolder));
        Assert.Equal(["healthy"], database.ListCollections().Select(c => c.Name));
    }

    [Fact]
    public async Task RequireAllCollections_refuses_the_open_as_before_and_leaves_the_files()
    {
        File.Delete(Path.Combine(_brokenFolder, "state", "layout.json"));

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Lenient with { RequireAllCollections = true }));
        Assert.Contains($"collection 'broken' (in {_brokenFolder}) could not be opened", error.Message, StringComparison.Ordinal);
        Assert.Contains("layout.json", error.Message, StringComparison.Ordinal);

        // The refused open released the folder and left the collection as it was.
        await using AssocDatabase database = AssocDatabase.Open(Lenient);
        Assert.Equal(CollectionState.Unavailable, Assert.Single(database.ListCollections(), c => c.Name == "broken").State);
    }

    // A failure that says nothing of the files (here the concept matrix refusing a dimension of 0,
    // which no check of the manifest knows for damage; the state store's refusal of an index size
    // served as the example until the options refused that size) was reported as an
    // InvalidDataException, which this class documents as damaged files, and the unavailable
    // reason gave its message without its type.
    [Fact]
    public async Task A_failure_other_than_damage_is_reported_as_what_it_is()
    {
        string manifest = Path.Combine(_brokenFolder, "collection.json");
        await File.WriteAllTextAsync(manifest, (await File.ReadAllTextAsync(manifest)).Replace("\"Dimension\": 8", "\"Dimension\": 0", StringComparison.Ordinal));

        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => AssocDatabase.Open(Lenient with { RequireAllCollections = true }));
        Assert.Contains("could not be opened: System.ArgumentOutOfRangeException: dimension", error.Message, StringComparison.Ordinal);
        Assert.IsType<ArgumentOutOfRangeException>(error.InnerException);

        await using AssocDatabase database = AssocDatabase.Open(Lenient);
        CollectionInfo broken = Assert.Single(database.ListCollections(), c => c.Name == "broken");
        Assert.Equal(CollectionState.Unavailable, broken.State);
        Assert.StartsWith("System.ArgumentOutOfRangeException: dimension", broken.UnavailableReason, StringComparison.Ordinal);
    }

    // A second folder holding a collection already open (a copy of its folder, under another col-
    // name) failed the whole open, lenient or not, and left the copy open.
    [Fact]
    public async Task A_second_folder_of_an_open_collection_is_unavailable_and_the_open_goes_on()
    {
        string healthyFolder = Path.Combine(Db.Options.DataDirectory, "col-" + new string('0', 24));
        CopyFolder(Directory.GetDirectories(Db.Options.DataDirectory, "col-*").Single(folder => folder != _brokenFolder), healthyFolder);

        await using (AssocDatabase database = AssocDatabase.Open(Lenient))
        {
            Assert.Equal("A", Assert.Single(database.GetCollection("healthy").AssertOk().Related("B", "child_of").AssertOk()).Concept);
            CollectionInfo copy = Assert.Single(database.ListCollections(), c => c is { Name: "healthy", State: CollectionState.Unavailable });
            Assert.Contains("collection 'healthy' is already open from ", copy.UnavailableReason, StringComparison.Ordinal);
            // The folder its name is kept in opens, not whichever the listing gave first.
            Assert.Equal(Path.GetFileName(healthyFolder), copy.Folder);
        }

        Assert.Throws<IOException>(() => AssocDatabase.Open(Lenient with { RequireAllCollections = true }));
    }

    // A staging folder that could not be deleted (a file in it the server may not remove) stopped
    // every open of the database.
    [Fact]
    public async Task A_staging_folder_that_cannot_be_removed_is_left_and_the_database_opens()
    {
        string staging = Path.Combine(Db.Options.DataDirectory, ".assocdb-staging-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(staging);
        string kept = Path.Combine(staging, "kept");
        await File.WriteAllTextAsync(kept, "");
        Chattr("+i", kept);
        try
        {
            var logs = new RecordedLogs();
            await using AssocDatabase database = AssocDatabase.Open(Lenient, logs);
            database.GetCollection("healthy").AssertOk();
            Assert.Contains(logs.Messages, message => message.Contains($"Could not remove {staging}", StringComparison.Ordinal));
            Assert.True(File.Exists(kept));
        }
        finally
        {
            Chattr("-i", kept);
        }

        await using (AssocDatabase.Open(Lenient))
        {
            Assert.False(Directory.Exists(staging));
        }
    }

    // A drop that closed an open collection and then failed to move its folder left it out of the
    // catalog only: hidden, its name free for a create that then failed on the folder, and back
    // after a restart.
    [Fact]
    public async Task A_drop_whose_folder_cannot_be_moved_leaves_the_collection_listed_and_can_be_retried()
    {
        await using AssocDatabase database = AssocDatabase.Open(Lenient);
        string folder = database.GetCollection("healthy").AssertOk().Directory;
        Chattr("+i", folder);
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => database.DropCollectionAsync("healthy"));
            Assert.Equal(CollectionState.Unavailable, Assert.Single(database.ListCollections(), c => c.Name == "healthy").State);
            EngineError refused = database.CreateCollection(new CollectionSpec("healthy", 8)).AssertError(ErrorCode.FailedPrecondition, "name");
            Assert.Contains($"its folder {folder} could not be deleted by a drop, which closed the collection", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Chattr("-i", folder);
        }

        Assert.True((await database.DropCollectionAsync("healthy")).AssertOk());
        Assert.False(Directory.Exists(folder));
        database.CreateCollection(new CollectionSpec("healthy", 8)).AssertOk();
    }

    /// <summary>Sets or clears a file's immutable attribute (root only): then not even root may
    /// delete, rename or change it.</summary>
    private static void Chattr(string change, string path)
    {
        using var chattr = System.Diagnostics.Process.Start("chattr", [change, path]);
        chattr.WaitForExit();
        Assert.True(chattr.ExitCode == 0, $"chattr {change} {path} exited {chattr.ExitCode}");
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (string folder in Directory.GetDirectories(from))
        {
            CopyFolder(folder, Path.Combine(to, Path.GetFileName(folder)));
        }
    }

    private void AssertRefused(EngineError error, string reason)
    {
        Assert.Contains("collection 'broken' is unavailable", error.Message, StringComparison.Ordinal);
        Assert.Contains(_brokenFolder, error.Message, StringComparison.Ordinal);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }
}
