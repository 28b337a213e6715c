using System.Diagnostics;
using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// A log file that cannot be opened (here a link into a missing folder, as a permission refused or
// a file that takes no unbuffered I/O would be) fails the write that needed it, and the collection
// still closes. FASTER's device counts a file handle before creating it, so after a failed creation
// its disposal waited for that handle forever and the close never returned.
public sealed class UnopenableLogFileTests : DatabaseTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    private static FactInput Fact(int number) => new($"head{number}", "links", $"tail{number}");

    [Fact]
    public async Task A_write_ahead_log_file_that_cannot_be_opened_stops_writes_and_the_close_still_ends()
    {
        Collection collection = Db.Create();
        // A new collection's log has written nothing yet, so FASTER has not opened its first file.
        string first = Path.Combine(collection.Directory, "wal", "fasterlog.log.0");
        Assert.False(File.Exists(first));
        File.CreateSymbolicLink(first, Path.Combine(Db.Folder, "missing", "fasterlog.log.0"));

        EngineError refused = (await collection.AddFactsAsync([Fact(0)]).WaitAsync(Generous)).AssertError(ErrorCode.FailedPrecondition, "collection");
        Assert.Contains($"takes no writes after its log failed to write (IOException: the write-ahead log's {first} could not be opened for writing", refused.Message, StringComparison.Ordinal);
        (await collection.AddFactsAsync([Fact(1)])).AssertError(ErrorCode.FailedPrecondition, "collection");
        Assert.Equal(0, collection.Describe().AssertOk().FactCount);

        var clock = Stopwatch.StartNew();
        await Db.Database.CloseAsync(checkpoint: true).AsTask().WaitAsync(Generous);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));

        // The file can be opened again: the collection takes writes, and kept none of the refused one.
        File.Delete(first);
        await Db.ReopenAsync();
        collection = Db.Get();
        Assert.Equal(0, collection.Describe().AssertOk().FactCount);
        (await collection.AddFactsAsync([Fact(2)])).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        Assert.Equal(1, Db.Get().Describe().AssertOk().FactCount);
    }
    // FASTER's pool opens a log file again when every handle it holds to it is busy; a file made
    // unopenable after it first opened (here moved away, a link into a missing folder in its place)
    // failed that open, the count of handles stayed, and the close never returned. Here each batch
    // after the first starts a page, writing the rest of the page before and the new one at once.
    [Fact]
    public async Task A_write_ahead_log_file_replaced_by_one_that_cannot_be_opened_stops_writes_and_the_close_still_ends()
    {
        Collection collection = Db.Create(dimension: 1024);
        // Entries of about 2.6 MB in 4 MiB pages: each after the first starts a page.
        (await collection.UpsertConceptsAsync(LargeBatch(0))).AssertOk();
        string first = Path.Combine(collection.Directory, "wal", "fasterlog.log.0");
        string aside = Path.Combine(Db.Folder, "fasterlog.log.0.aside");
        File.Move(first, aside);
        File.CreateSymbolicLink(first, Path.Combine(Db.Folder, "missing", "fasterlog.log.0"));

        // On a loaded machine a batch's first write can end before its second begins: the handle
        // held serves both and the batch is stored (in the file moved aside). The next batch tries
        // again; one is refused within a few.
        int stored = 1;
        EngineError? refused = null;
        while (refused is null && stored < 8)
        {
            Result<WriteSummary> written = await collection.UpsertConceptsAsync(LargeBatch(stored)).WaitAsync(Generous);
            if (written.IsOk)
            {
                stored++;
            }
            else
            {
                refused = written.AssertError(ErrorCode.FailedPrecondition, "collection");
            }
        }

        Assert.NotNull(refused);
        Assert.Contains($"(IOException: the write-ahead log's {first} could not be opened for writing", refused.Message, StringComparison.Ordinal);

        var clock = Stopwatch.StartNew();
        await Db.Database.CloseAsync(checkpoint: true).AsTask().WaitAsync(Generous);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));

        // The file back in place, the collection holds the first batch and takes writes.
        File.Delete(first);
        File.Move(aside, first);
        await Db.ReopenAsync();
        collection = Db.Get();
        Assert.Equal(stored * LargeBatchSize, collection.Describe().AssertOk().ConceptCount);
        (await collection.UpsertConceptsAsync(LargeBatch(stored))).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        Assert.Equal((stored + 1) * LargeBatchSize, Db.Get().Describe().AssertOk().ConceptCount);
    }

    private const int LargeBatchSize = 640;

    /// <summary>Batch <paramref name="number"/> of <see cref="LargeBatchSize"/> new concepts of
    /// 1,024 floats each (about 2.6 MB logged).</summary>
    private static ConceptInput[] LargeBatch(int number) =>
        [.. Enumerable.Range(number * LargeBatchSize, LargeBatchSize).Select(i => new ConceptInput($"concept{i}", [.. Enumerable.Range(0, 1024).Select(d => (float)(i + d + 1))]))];
}
