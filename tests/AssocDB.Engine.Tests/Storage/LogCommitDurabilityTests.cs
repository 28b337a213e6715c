using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using FASTER.core;

namespace AssocDB.Engine.Tests.Storage;

// Guards the write-ahead log's commit records on real files. FASTER's default commit manager
// ignored a failed write of a record: on a full disk a write was acknowledged, the previous record
// deleted, and the reopened collection came back empty.
public sealed class LogCommitDurabilityTests : DatabaseTests
{
    /// <summary>The sector FASTER's default manager padded each commit record to.</summary>
    private const int SectorBytes = 512;

    private static FactInput Fact(int number) => new($"head{number}", "links", $"tail{number}");

    private static string CommitsFolder(Collection collection) => Path.Combine(collection.Directory, "wal", "log-commits");

    private static string[] CommitFiles(Collection collection) =>
        [.. Directory.GetFiles(CommitsFolder(collection), "commit.*.0").Order(StringComparer.Ordinal)];

    /// <summary>Two facts, each in its own commit, then a closed database whose commit folder
    /// holds the record before the newest again (the manager deleted it once the newest was
    /// durable): the state a crash while writing the newest leaves. Returns the newest's path.</summary>
    private async Task<string> TwoCommitsBothOnDiskAsync()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([Fact(0)])).AssertOk();
        string previous = Assert.Single(CommitFiles(collection));
        byte[] previousRecord = await File.ReadAllBytesAsync(previous);
        (await collection.AddFactsAsync([Fact(1)])).AssertOk();
        string newest = Assert.Single(CommitFiles(collection));
        Assert.NotEqual(previous, newest);
        await Db.Database.CloseAsync(checkpoint: false);
        await File.WriteAllBytesAsync(previous, previousRecord);
        return newest;
    }

    private static void AssertFacts(Collection collection, int count)
    {
        Assert.Equal(count, collection.Describe().AssertOk().FactCount);
        for (int number = 0; number < count; number++)
        {
            Assert.True(collection.Neighbors($"head{number}", "links").AssertOk().Any(edge => edge.Fact == new FactKey($"head{number}", "links", $"tail{number}")), $"fact {number} is missing");
        }
    }

    /// <summary>Facts 0 to <paramref name="facts"/> - 1, a write (and so a commit) each, in a
    /// database then closed without a checkpoint; returns the (closed) collection.</summary>
    private async Task<Collection> FactsInTheLogOnlyAsync(int facts)
    {
        Collection collection = Db.Create();
        for (int number = 0; number < facts; number++)
        {
            (await collection.AddFactsAsync([Fact(number)])).AssertOk();
        }

        await Db.Database.CloseAsync(checkpoint: false);
        return collection;
    }

    private static string LogFolder(Collection collection) => Path.Combine(collection.Directory, "wal");

    /// <summary>The open's error, and that it left the log's files as they were.</summary>
    private InvalidDataException OpenRefusedLeavingTheLog(Collection collection)
    {
        string[] Files() => [.. Directory.GetFiles(LogFolder(collection), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)];
        Dictionary<string, byte[]> before = Files().ToDictionary(file => file, File.ReadAllBytes);
        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Equal(before.Keys, Files());
        Assert.All(before, file => Assert.Equal(file.Value, File.ReadAllBytes(file.Key)));
        return error;
    }

    // With its commit records deleted the log opened empty, and the next write overwrote its
    // entries: every fact since the last checkpoint was lost, without a word.
    [Fact]
    public async Task A_log_whose_commit_records_were_deleted_stops_the_open_instead_of_opening_empty()
    {
        Collection collection = await FactsInTheLogOnlyAsync(3);
        foreach (string record in CommitFiles(collection))
        {
            File.Delete(record);
        }

        InvalidDataException error = OpenRefusedLeavingTheLog(collection);
        Assert.Contains("the write-ahead log of collection 'test' is damaged", error.Message, StringComparison.Ordinal);
        Assert.Contains($"Its files under {LogFolder(collection)} are left as they are", error.Message, StringComparison.Ordinal);
        Assert.Contains("it holds whole, checksummed batches 1 and 2 (and maybe more) from address 64 on, and no commit record", error.Message, StringComparison.Ordinal);
    }

    // The same with an older record put back in place of the newest (a restored backup of the
    // folder, say): the log opened as it was two writes before.
    [Fact]
    public async Task A_log_whose_newest_commit_record_was_replaced_by_an_older_one_stops_the_open()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([Fact(0)])).AssertOk();
        string first = Assert.Single(CommitFiles(collection));
        byte[] firstRecord = await File.ReadAllBytesAsync(first);
        for (int number = 1; number < 4; number++)
        {
            (await collection.AddFactsAsync([Fact(number)])).AssertOk();
        }

        await Db.Database.CloseAsync(checkpoint: false);
        foreach (string record in CommitFiles(collection))
        {
            File.Delete(record);
        }

        await File.WriteAllBytesAsync(first, firstRecord);
        InvalidDataException error = OpenRefusedLeavingTheLog(collection);
        Assert.Contains("whole, checksummed batches 2 and 3 (and maybe more)", error.Message, StringComparison.Ordinal);
        Assert.Contains("past its last commit record (up to address", error.Message, StringComparison.Ordinal);
    }

    // A crash during a collection's first write, after its entry reached the log's file and before
    // its commit record was written, leaves what deleting that record leaves: one entry past no
    // commit. That write was never acknowledged; the collection opens empty and writes on.
    [Fact]
    public async Task A_crash_during_the_first_write_still_opens_empty_and_takes_writes()
    {
        Collection first = await FactsInTheLogOnlyAsync(1);
        File.Delete(Assert.Single(CommitFiles(first)));

        await Db.ReopenAsync(checkpointOnClose: false);
        Collection collection = Db.Get();
        AssertFacts(collection, 0);
        (await collection.AddFactsAsync([Fact(0)])).AssertOk();
        (await collection.AddFactsAsync([Fact(1)])).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 2);
    }

    // /dev/full fails every write with ENOSPC, as a full disk does; the record is written to the
    // pending file first, so linking that to /dev/full makes the next commit record fail.
    [Fact]
    public async Task A_commit_record_that_cannot_be_written_fails_the_write_and_keeps_every_acknowledged_one()
    {
        Assert.True(File.Exists("/dev/full"), "this test needs Linux's /dev/full to fail a write with ENOSPC");
        Collection collection = Db.Create();
        for (int number = 0; number < 3; number++)
        {
            (await collection.AddFactsAsync([Fact(number)])).AssertOk();
        }

        string[] durableCommits = CommitFiles(collection);
        File.CreateSymbolicLink(Path.Combine(CommitsFolder(collection), DurableLogCommitManager.PendingFileName), "/dev/full");

        Result<WriteSummary> failed = await collection.AddFactsAsync([Fact(3)]);
        EngineError error = failed.AssertError(ErrorCode.FailedPrecondition, "collection");
        Assert.Contains("commit record", error.Message, StringComparison.Ordinal);
        Assert.Equal(durableCommits, CommitFiles(collection));

        // Writes and checkpoints stay stopped until a reopen, which also drops the pending file;
        // reads go on, and show exactly the acknowledged writes.
        (await collection.AddFactsAsync([Fact(4)])).AssertError(ErrorCode.FailedPrecondition, "collection");
        (await collection.CheckpointAsync()).AssertError(ErrorCode.FailedPrecondition, "collection");
        AssertFacts(collection, 3);
        Assert.False(collection.GetConcept("head3").IsOk);
        await Db.ReopenAsync(checkpointOnClose: false);
        collection = Db.Get();
        AssertFacts(collection, 3);

        (await collection.AddFactsAsync([Fact(3)])).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 4);
    }

    // A crash while FASTER's default manager (earlier versions) wrote a record left it empty, or a
    // whole sector (it padded each record to one) holding part of the record. Recovery passes over
    // it for the record before: the write that record covers survives, the one after is lost (it
    // was never acknowledged as durable), and the collection does not open empty.
    [Theory]
    [InlineData(0)]
    [InlineData(SectorBytes)]
    public async Task A_torn_newest_commit_record_of_FASTERs_default_manager_falls_back_to_the_one_before(int tornLength)
    {
        string newest = await TwoCommitsBothOnDiskAsync();
        byte[] torn = new byte[tornLength];
        File.ReadAllBytes(newest).AsSpan(0, Math.Min(tornLength, 20)).CopyTo(torn);
        File.WriteAllBytes(newest, torn);

        await Db.ReopenAsync(checkpointOnClose: false);
        Collection collection = Db.Get();
        AssertFacts(collection, 1);
        (await collection.AddFactsAsync([Fact(1)])).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 2);
    }

    // This manager writes a record whole and renames it into place, so a damaged one is damage to
    // the disk, not a torn write, even beside an older record (a crash between the rename and the
    // older one's deletion leaves both): it was taken for torn, and the older record recovered,
    // dropping the newest write silently.
    [Theory]
    [InlineData(7, -1)]
    [InlineData(-1, 28)] // a bit of the committed address, which FASTER's checksum covers
    public async Task A_damaged_newest_commit_record_of_our_own_stops_the_open_though_an_older_one_lies_beside_it(int keptBytes, int flippedByte)
    {
        string newest = await TwoCommitsBothOnDiskAsync();
        byte[] record = File.ReadAllBytes(newest);
        Assert.Equal(48, record.Length); // the length and FASTER's record, unpadded
        if (flippedByte >= 0)
        {
            record[flippedByte] ^= 0x01;
        }
        else
        {
            record = record[..keptBytes];
        }

        File.WriteAllBytes(newest, record);
        string[] commits = [.. Directory.GetFiles(Path.GetDirectoryName(newest)!).Order(StringComparer.Ordinal)];

        InvalidDataException error = Assert.ThrowsAny<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains($"the commit record {newest} is damaged", error.Message, StringComparison.Ordinal);
        Assert.Contains("not a multiple of 512", error.Message, StringComparison.Ordinal);
        Assert.Equal(commits, Directory.GetFiles(Path.GetDirectoryName(newest)!).Order(StringComparer.Ordinal));
    }

    // Only a torn record of FASTER's default manager is passed over: one that cannot be read at all (here a link to
    // nowhere) may hold the latest commit, and recovering an older one would lose writes silently.
    [Fact]
    public async Task A_newest_commit_record_that_cannot_be_read_stops_the_open()
    {
        string newest = await TwoCommitsBothOnDiskAsync();
        File.Delete(newest);
        File.CreateSymbolicLink(newest, Path.Combine(Db.Folder, "nowhere"));

        IOException error = Assert.ThrowsAny<IOException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains("commit record that cannot be read", error.Message, StringComparison.Ordinal);
    }

    // Logs written before this manager have FASTER's default commit records; they open as they were.
    // Those are padded to a whole sector, which is how a torn one is told from damage to ours.
    [Fact]
    public async Task A_log_committed_by_FASTERs_default_manager_opens_with_its_entries()
    {
        using var folder = new TempDirectory();
        const int PageSizeBits = 16;
        using (var settings = new FasterLogSettings(folder.Path) { PageSizeBits = PageSizeBits, MemorySizeBits = PageSizeBits + 1 })
        using (var legacy = new FasterLog(settings))
        {
            for (byte entry = 1; entry <= 3; entry++)
            {
                legacy.Enqueue(new[] { entry, entry });
                await legacy.CommitAsync();
            }
        }

        // FASTER's default manager deletes outdated commit records in the background, after the log
        // is disposed too, so a record listed here may be gone when its length is read (FileInfo
        // keeps what Exists read).
        long[] legacyLengths = [.. Directory.GetFiles(Path.Combine(folder.Path, "log-commits"), "commit.*.0")
            .Select(record => new FileInfo(record)).Where(record => record.Exists).Select(record => record.Length)];
        Assert.NotEmpty(legacyLengths);
        Assert.All(legacyLengths, length => Assert.Equal(SectorBytes, length));
        using (var log = new WriteAheadLog(folder.Path, PageSizeBits))
        {
            Assert.Equal([[1, 1], [2, 2], [3, 3]], log.ReadCommitted(WriteAheadLog.FirstAddress).Select(committed => committed.Entry));
            await log.AppendDurableAsync(new byte[] { 4, 4 });
        }

        using (var reopened = new WriteAheadLog(folder.Path, PageSizeBits))
        {
            Assert.Equal([[1, 1], [2, 2], [3, 3], [4, 4]], reopened.ReadCommitted(WriteAheadLog.FirstAddress).Select(committed => committed.Entry));
        }
    }
}
