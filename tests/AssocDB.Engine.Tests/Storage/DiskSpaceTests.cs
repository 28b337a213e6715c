using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// Guards the free-disk reserve: writes stop short of a full disk, where FASTER's logs cannot be
// relied on, with an error saying so, and nothing of the refused write is kept; and a collection
// reopened as it was writes nothing to open, so it opens on a full disk.
public sealed class DiskSpaceTests : DatabaseTests
{
    [Fact]
    public async Task A_write_that_would_eat_into_the_free_disk_reserve_is_refused_and_reads_go_on()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("ann", "knows", "bob")])).AssertOk();
        long free = new DriveInfo(Db.Folder).AvailableFreeSpace;

        // A reserve above what the disk has free: as if the disk were nearly full.
        await Db.ReopenAsync(minFreeDiskBytes: free + (1L << 40));
        collection = Db.Get();
        EngineError refused = (await collection.AddFactsAsync([new FactInput("bob", "knows", "carol")])).AssertError(ErrorCode.ResourceExhausted, "");

        Assert.Contains("bytes free", refused.Message, StringComparison.Ordinal);
        Assert.Contains("MinFreeDiskBytes", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1L, collection.Describe().AssertOk().FactCount);
        Assert.Equal(["bob"], collection.Related("ann", "knows").AssertOk().Select(a => a.Concept));
        Assert.False(collection.GetConcept("carol").IsOk);

        // Room again: the same collection takes the write, and only it.
        await Db.ReopenAsync(checkpointOnClose: false, minFreeDiskBytes: 0);
        collection = Db.Get();
        (await collection.AddFactsAsync([new FactInput("bob", "knows", "carol")])).AssertOk();
        Assert.Equal(2L, collection.Describe().AssertOk().FactCount);
    }

    // A store without a checkpoint used to rewrite its layout file at every open, which on a full
    // disk failed the open of the whole database.
    [Fact]
    public async Task Reopening_a_collection_as_it_was_leaves_its_files_untouched()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("ann", "knows", "bob")])).AssertOk();
        string layout = Path.Combine(collection.Directory, "state", "layout.json");
        await Db.ReopenAsync(checkpointOnClose: false);
        DateTime written = File.GetLastWriteTimeUtc(layout);
        File.SetLastWriteTimeUtc(layout, written.AddDays(-1));

        await Db.ReopenAsync(checkpointOnClose: false);

        Assert.Equal(written.AddDays(-1), File.GetLastWriteTimeUtc(layout));
        Assert.Equal(1L, Db.Get().Describe().AssertOk().FactCount);
    }
}
