using System.Buffers.Binary;
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

    private static string SlotsFile(Collection collection) => Path.Combine(CommitsFolder(collection), DurableLogCommitManager.SlotsFileName);

    /// <summary>The record files of earlier versions (<c>commit.N.0</c>), by name.</summary>
    private static string[] RecordFiles(Collection collection) =>
        [.. Directory.GetFiles(CommitsFolder(collection), "commit.*.0").Order(StringComparer.Ordinal)];

    /// <summary>The records in the slots (null for an empty one): the commit number, and the record
    /// file earlier versions wrote for it (the record's length as an int32, then the record).</summary>
    private static (long CommitNum, byte[] RecordFile)?[] Slots(string slotsFile)
    {
        byte[] file = File.ReadAllBytes(slotsFile);
        Assert.Equal(2 * DurableLogCommitManager.SlotStride, file.Length);
        return [.. Enumerable.Range(0, 2).Select(slot =>
        {
            ReadOnlySpan<byte> sector = file.AsSpan(slot * DurableLogCommitManager.SlotStride, DurableLogCommitManager.SlotBytes);
            if (!sector.ContainsAnyExcept((byte)0))
            {
                return ((long, byte[])?)null;
            }

            int length = BinaryPrimitives.ReadInt32LittleEndian(sector[12..]);
            return (BinaryPrimitives.ReadInt64LittleEndian(sector[4..]), [.. sector.Slice(12, sizeof(int) + length)]);
        })];
    }

    /// <summary>Two facts, each in its own commit, then a closed database whose records are moved
    /// from the slots into record files as earlier versions wrote them (<c>commit.N.0</c>), both kept:
    /// the state a crash while writing the newest left. Returns the newest's path.</summary>
    private async Task<string> TwoCommitsInRecordFilesOfEarlierVersionsAsync()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([Fact(0)])).AssertOk();
        (await collection.AddFactsAsync([Fact(1)])).AssertOk();
        await Db.Database.CloseAsync(checkpoint: false);

        string[] files = [.. Slots(SlotsFile(collection)).Select(slot => slot!.Value).OrderBy(slot => slot.CommitNum).Select(slot => WriteRecordFile(collection, slot))];
        Assert.Equal(2, files.Length);
        File.Delete(SlotsFile(collection));
        return files[^1];
    }

    /// <summary>Writes a slot's record as a record file of earlier versions; returns its path.</summary>
    private static string WriteRecordFile(Collection collection, (long CommitNum, byte[] RecordFile) record)
    {
        string path = Path.Combine(CommitsFolder(collection), $"commit.{record.CommitNum}.0");
        File.WriteAllBytes(path, record.RecordFile);
        return path;
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
        File.Delete(SlotsFile(collection));

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
        byte[] firstRecords = await File.ReadAllBytesAsync(SlotsFile(collection));
        for (int number = 1; number < 4; number++)
        {
            (await collection.AddFactsAsync([Fact(number)])).AssertOk();
        }

        await Db.Database.CloseAsync(checkpoint: false);
        await File.WriteAllBytesAsync(SlotsFile(collection), firstRecords);
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
        File.Delete(SlotsFile(first));

        await Db.ReopenAsync(checkpointOnClose: false);
        Collection collection = Db.Get();
        AssertFacts(collection, 0);
        (await collection.AddFactsAsync([Fact(0)])).AssertOk();
        (await collection.AddFactsAsync([Fact(1)])).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 2);
    }

    // /dev/full reads as zeros and fails every write with ENOSPC, as a full disk does. The newest
    // record is moved into a record file of the earlier versions, and the slots' file replaced by a
    // link to /dev/full: the log opens from the record file, and the next commit record fails.
    [Fact]
    public async Task A_commit_record_that_cannot_be_written_fails_the_write_and_keeps_every_acknowledged_one()
    {
        Assert.True(File.Exists("/dev/full"), "this test needs Linux's /dev/full to fail a write with ENOSPC");
        Collection collection = Db.Create();
        for (int number = 0; number < 3; number++)
        {
            (await collection.AddFactsAsync([Fact(number)])).AssertOk();
        }

        await Db.Database.CloseAsync(checkpoint: false);
        string record = WriteRecordFile(collection, Slots(SlotsFile(collection)).Select(slot => slot!.Value).MaxBy(slot => slot.CommitNum));
        File.Delete(SlotsFile(collection));
        File.CreateSymbolicLink(SlotsFile(collection), "/dev/full");
        await Db.ReopenAsync(checkpointOnClose: false);
        collection = Db.Get();
        AssertFacts(collection, 3);

        Result<WriteSummary> failed = await collection.AddFactsAsync([Fact(3)]);
        EngineError error = failed.AssertError(ErrorCode.FailedPrecondition, "collection");
        Assert.Contains("commit record", error.Message, StringComparison.Ordinal);
        Assert.Equal([record], RecordFiles(collection));

        // Writes and checkpoints stay stopped until a reopen; reads go on, and show exactly the
        // acknowledged writes.
        (await collection.AddFactsAsync([Fact(4)])).AssertError(ErrorCode.FailedPrecondition, "collection");
        (await collection.CheckpointAsync()).AssertError(ErrorCode.FailedPrecondition, "collection");
        AssertFacts(collection, 3);
        Assert.False(collection.GetConcept("head3").IsOk);
        await Db.ReopenAsync(checkpointOnClose: false);
        collection = Db.Get();
        AssertFacts(collection, 3);

        // With the disk writable again the next record goes to a slot, and the record file goes.
        await Db.Database.CloseAsync(checkpoint: false);
        File.Delete(SlotsFile(collection));
        await Db.ReopenAsync(checkpointOnClose: false);
        collection = Db.Get();
        (await collection.AddFactsAsync([Fact(3)])).AssertOk();
        Assert.Empty(RecordFiles(collection));
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 4);
    }

    // A record is one write in place: into the slot without the newest record, which stays whole
    // whatever becomes of the write; no file is created or deleted per commit.
    [Fact]
    public async Task Each_commit_record_overwrites_the_slot_without_the_newest_one()
    {
        Collection collection = Db.Create();
        long? previous = null;
        for (int number = 0; number < 4; number++)
        {
            (await collection.AddFactsAsync([Fact(number)])).AssertOk();
            long[] commits = [.. Slots(SlotsFile(collection)).Select(slot => slot?.CommitNum ?? -1)];
            int newest = commits[0] > commits[1] ? 0 : 1;
            if (previous is long before)
            {
                Assert.Equal(before, commits[1 - newest]);
                Assert.True(commits[newest] > before);
            }

            previous = commits[newest];
        }

        Assert.Equal([DurableLogCommitManager.SlotsFileName], Directory.GetFiles(CommitsFolder(collection)).Select(Path.GetFileName));
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 4);
    }

    // A crash leaves a sector whole, old or new, so a slot that fails its checksum was damaged
    // afterwards, whichever slot it is: read as the other slot's record, a damaged newest one
    // would lose the write it committed.
    [Theory]
    [InlineData(true, 4)] // the commit number
    [InlineData(true, 40)] // FASTER's record: a bit of the committed address
    [InlineData(false, 40)]
    public async Task A_damaged_commit_record_slot_stops_the_open_though_the_other_slot_holds_a_record(bool newest, int flippedByte)
    {
        Collection collection = await FactsInTheLogOnlyAsync(2);
        long[] commits = [.. Slots(SlotsFile(collection)).Select(slot => slot!.Value.CommitNum)];
        int slot = (commits[0] > commits[1]) == newest ? 0 : 1;
        byte[] file = File.ReadAllBytes(SlotsFile(collection));
        file[(slot * DurableLogCommitManager.SlotStride) + flippedByte] ^= 0x01;
        File.WriteAllBytes(SlotsFile(collection), file);

        InvalidDataException error = OpenRefusedLeavingTheLog(collection);
        Assert.Contains($"the commit record in slot {slot} of {SlotsFile(collection)} is damaged: its checksum does not match", error.Message, StringComparison.Ordinal);
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
        string newest = await TwoCommitsInRecordFilesOfEarlierVersionsAsync();
        byte[] torn = new byte[tornLength];
        File.ReadAllBytes(newest).AsSpan(0, Math.Min(tornLength, 20)).CopyTo(torn);
        File.WriteAllBytes(newest, torn);

        await Db.ReopenAsync(checkpointOnClose: false);
        Collection collection = Db.Get();
        AssertFacts(collection, 1);
        (await collection.AddFactsAsync([Fact(1)])).AssertOk();
        Assert.Empty(RecordFiles(collection));
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertFacts(Db.Get(), 2);
    }

    // Earlier versions wrote a record whole and renamed it into place, so a damaged one is damage
    // to the disk, not a torn write, even beside an older record (a crash between the rename and the
    // older one's deletion left both): it was taken for torn, and the older record recovered,
    // dropping the newest write silently.
    [Theory]
    [InlineData(7, -1)]
    [InlineData(-1, 28)] // a bit of the committed address, which FASTER's checksum covers
    public async Task A_damaged_newest_commit_record_file_of_ours_stops_the_open_though_an_older_one_lies_beside_it(int keptBytes, int flippedByte)
    {
        string newest = await TwoCommitsInRecordFilesOfEarlierVersionsAsync();
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
        string newest = await TwoCommitsInRecordFilesOfEarlierVersionsAsync();
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

        Assert.Equal([DurableLogCommitManager.SlotsFileName], Directory.GetFiles(Path.Combine(folder.Path, "log-commits")).Select(Path.GetFileName));

        using (var reopened = new WriteAheadLog(folder.Path, PageSizeBits))
        {
            Assert.Equal([[1, 1], [2, 2], [3, 3], [4, 4]], reopened.ReadCommitted(WriteAheadLog.FirstAddress).Select(committed => committed.Entry));
        }
    }
}
