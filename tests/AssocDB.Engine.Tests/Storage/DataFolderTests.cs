using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// The data folder holds AssocDB's collections and its staging folders, and possibly folders that
// are not AssocDB's: open takes the collections, removes staging leftovers, and leaves the rest.
public sealed class DataFolderTests : DatabaseTests
{
    /// <summary>A folder in the data folder holding one file.</summary>
    private string FolderWithAFile(string name)
    {
        string folder = Path.Combine(Db.Folder, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "kept.txt"), "a user's file");
        return folder;
    }

    // Open deleted every hidden folder recursively, without a word: a user's backup or a desktop's
    // trash went with AssocDB's own leftovers.
    [Fact]
    public async Task Open_removes_its_own_staging_leftovers_only_and_logs_each()
    {
        Db.Create();
        await Db.Database.CloseAsync(checkpoint: true);
        // A dot and 32 hex digits is how earlier versions named their staging folders, and a cache
        // named by an MD5 hash too: such a folder is taken for a leftover only while it holds no
        // more than a collection's folder holds.
        string[] foreign = [.. new[] { ".backup-of-x", ".Trash-0", $".{Guid.NewGuid():N}-copy", "notes", $".{Guid.NewGuid():N}" }.Select(FolderWithAFile)];
        string earlierDrop = Path.Combine(Db.Folder, $".{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(earlierDrop, "state"));
        File.WriteAllText(Path.Combine(earlierDrop, "collection.json"), "{}");
        string[] leftovers = [FolderWithAFile($".assocdb-staging-{Guid.NewGuid():N}"), earlierDrop, Directory.CreateDirectory(Path.Combine(Db.Folder, $".{Guid.NewGuid():N}")).FullName];

        var logs = new RecordedLogs();
        await using (AssocDatabase database = AssocDatabase.Open(Db.Options, logs))
        {
            Assert.Equal(["test"], database.ListCollections().Select(collection => collection.Name));
        }

        Assert.All(foreign, folder => Assert.True(File.Exists(Path.Combine(folder, "kept.txt")), $"{folder} was not left alone"));
        Assert.All(leftovers, folder => Assert.False(Directory.Exists(folder), $"{folder} was not removed"));
        Assert.All(leftovers, folder => Assert.Single(logs.Messages, message => message.Contains(folder, StringComparison.Ordinal)));
    }

    // Any failure to open the folder's LOCK file was reported as another process using the folder.
    [Fact]
    public async Task A_second_open_is_refused_as_in_use_and_a_lock_file_that_cannot_be_opened_says_why()
    {
        Db.Create();
        var inUse = Assert.Throws<IOException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains("is in use by another process (it holds the folder's LOCK file): stop that process, or give this one another data folder", inUse.Message, StringComparison.Ordinal);
        await Db.Database.CloseAsync(checkpoint: true);

        string lockFile = Path.Combine(Db.Folder, "LOCK");
        File.Delete(lockFile);
        File.CreateSymbolicLink(lockFile, Path.Combine(Db.Folder, "no-such-folder", "LOCK"));
        var unopenable = Assert.Throws<IOException>(() => AssocDatabase.Open(Db.Options));
        Assert.StartsWith($"the data folder's LOCK file could not be opened in {Db.Folder}: ", unopenable.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("another process", unopenable.Message, StringComparison.Ordinal);
    }

    // A stray collection folder without a manifest failed the open with a bare "could not find
    // file". Refusing is right (the folder may hold data), but the error must say what is wrong.
    [Fact]
    public async Task A_collection_folder_without_a_manifest_stops_the_open_naming_it_and_is_left_alone()
    {
        await Db.Database.CloseAsync(checkpoint: true);
        string stray = Path.Combine(Db.Folder, "col-stray");
        Directory.CreateDirectory(stray);

        FileNotFoundException error = Assert.Throws<FileNotFoundException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains($"the folder {stray} holds no collection.json", error.Message, StringComparison.Ordinal);
        Assert.True(Directory.Exists(stray));
    }
}
