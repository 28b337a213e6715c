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
        string[] foreign = [.. new[] { ".backup-of-x", ".Trash-0", $".{Guid.NewGuid():N}-copy", "notes" }.Select(FolderWithAFile)];
        string[] leftovers = [FolderWithAFile($".assocdb-staging-{Guid.NewGuid():N}"), FolderWithAFile($".{Guid.NewGuid():N}")];

        var logs = new RecordedLogs();
        await using (AssocDatabase database = AssocDatabase.Open(Db.Options, logs))
        {
            Assert.Equal(["test"], database.ListCollections().Select(collection => collection.Name));
        }

        Assert.All(foreign, folder => Assert.True(File.Exists(Path.Combine(folder, "kept.txt")), $"{folder} was not left alone"));
        Assert.All(leftovers, folder => Assert.False(Directory.Exists(folder), $"{folder} was not removed"));
        Assert.All(leftovers, folder => Assert.Single(logs.Messages, message => message.Contains(folder, StringComparison.Ordinal)));
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
