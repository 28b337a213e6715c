using System.Buffers.Binary;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// A damaged write-ahead log must stop the open, naming what is wrong. Read as it was, a flipped
// bit replayed as a different fact, and a zeroed or cut-off stretch as an older collection, which
// the next checkpoint made permanent.
public sealed class LogDamageTests : DatabaseTests
{
    private const int LogPageSizeBits = 22;

    /// <summary>
    /// One concept per write, <paramref name="writes"/> writes (each logged entry holding
    /// <paramref name="blobBytes"/> of metadata), a checkpoint after the first
    /// <paramref name="checkpointAfter"/>, and a close without one: the entries after it are
    /// replayed at the next open. Returns the log's file and its entries' addresses.
    /// </summary>
    private async Task<(string File, List<(long Address, long NextAddress)> Entries)> LoggedWritesAsync(int writes, int blobBytes, int checkpointAfter = 0)
    {
        Collection collection = Db.Create();
        var blob = new string('x', blobBytes);
        for (int i = 0; i < writes; i++)
        {
            if (i == checkpointAfter && i > 0)
            {
                (await collection.CheckpointAsync()).AssertOk();
            }

            (await collection.UpsertConceptsAsync([new ConceptInput($"c{i}", Metadata: new Dictionary<string, string> { ["blob"] = blob })])).AssertOk();
        }

        string folder = Path.Combine(collection.Directory, "wal");
        await Db.Database.CloseAsync(checkpoint: false);
        using var log = new WriteAheadLog(folder, LogPageSizeBits);
        List<(long, long)> entries = [.. log.ReadCommitted(WriteAheadLog.FirstAddress).Select(entry => (entry.Address, entry.NextAddress))];
        return (Assert.Single(Directory.GetFiles(folder, "*.log.0")), entries);
    }

    /// <summary>The open's error, its causes' messages included.</summary>
    private string OpenError() => Assert.ThrowsAny<Exception>(() => AssocDatabase.Open(Db.Options)).ToString();

    private static void Overwrite(string file, long offset, byte[] bytes)
    {
        using FileStream stream = File.OpenWrite(file);
        stream.Position = offset;
        stream.Write(bytes);
    }

    [Fact]
    public async Task A_flipped_byte_in_a_log_entry_stops_the_open_at_that_entry()
    {
        (string file, List<(long Address, long NextAddress)> entries) = await LoggedWritesAsync(3, 100);
        long damaged = entries[1].Address;
        byte[] original = File.ReadAllBytes(file);

        // Past FASTER's 4-byte length header and the entry's own header: a byte of the concept.
        long offset = damaged + 4 + 30;
        Overwrite(file, offset, [(byte)(original[offset] ^ 0x10)]);

        string error = OpenError();
        Assert.Contains($"entry at address {damaged} cannot be read", error, StringComparison.Ordinal);
        Assert.Contains("checksum", error, StringComparison.Ordinal);
    }

    // How a version meets a mutation added after it (DeleteIngestMark, tag 7, and MovedIngestMark,
    // tag 8, are read by no version before them): an entry whole and checksummed, but holding a tag
    // it does not know, stops the open, naming the entry and the tag, and is never read past.
    [Fact]
    public async Task A_log_entry_holding_an_unknown_mutation_tag_stops_the_open_naming_it()
    {
        (string file, List<(long Address, long NextAddress)> entries) = await LoggedWritesAsync(3, 100);
        long unknown = entries[1].Address;
        byte[] bytes = File.ReadAllBytes(file);

        // After FASTER's 4-byte length header: the format, the checksum, the sequence, the count,
        // then the first mutation's tag; the checksum covers everything after itself.
        const int Header = 4, Checksum = 1, Checksummed = Checksum + sizeof(uint), FirstTag = Checksummed + sizeof(long) + sizeof(int);
        int length = BitConverter.ToInt32(bytes, (int)unknown);
        byte[] entry = bytes.AsSpan((int)unknown + Header, length).ToArray();
        entry[FirstTag] = 99;
        BitConverter.TryWriteBytes(entry.AsSpan(Checksum), Crc32C.Of(entry.AsSpan(Checksummed)));
        Overwrite(file, unknown + Header, entry);

        string error = OpenError();
        Assert.Contains($"entry at address {unknown} cannot be read (unknown mutation tag 99)", error, StringComparison.Ordinal);
    }

    // FASTER's reader takes a zero length for the padding that ends a page, and goes on at the
    // next page: the rest of this page's entries vanished without a trace.
    [Fact]
    public async Task A_zeroed_stretch_after_a_checkpoint_stops_the_open_as_batches_missing()
    {
        // 200 kB entries, about 20 to a 4 MiB page; the checkpoint covers the first two, and the
        // log now begins with the third.
        (string file, List<(long Address, long NextAddress)> entries) = await LoggedWritesAsync(30, 200_000, checkpointAfter: 2);
        Assert.Equal(28, entries.Count);
        (long address, long next) = entries[0];
        Overwrite(file, address, new byte[next - address]);

        Assert.Contains("but batch 3 comes next", OpenError(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_log_cut_short_at_an_entry_boundary_stops_the_open()
    {
        (string file, List<(long Address, long NextAddress)> entries) = await LoggedWritesAsync(3, 100);
        using (FileStream stream = File.OpenWrite(file))
        {
            stream.SetLength(entries[2].Address);
        }

        Assert.Contains($"its entries end at address {entries[2].Address}, but it was committed up to address {entries[2].NextAddress}", OpenError(), StringComparison.Ordinal);
    }

    // The commit records' file: two 512-byte slots, each its marker (uint32), the commit number
    // (int64), the record's length (int32), then FASTER's record: its version (int32), checksum,
    // begin and committed addresses and commit number (int64 each), iterator count and cookie
    // length (int32), and then a CRC-32C of the slot's bytes before it.
    [Theory]
    [InlineData(0, -1, "the file is 0 bytes long")]
    [InlineData(7, -1, "the file is 7 bytes long")]
    [InlineData(-1, 0, "its header is not one AssocDB writes")]
    [InlineData(-1, 40, "its checksum does not match")] // a bit of the committed address
    [InlineData(-1, 52, "its checksum does not match")] // the iterator count: FASTER's parse would read a negative length
    public async Task A_damaged_commit_record_stops_the_open(int keptBytes, int flippedByte, string damage)
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("a", "links", "b")])).AssertOk();
        string slots = Path.Combine(collection.Directory, "wal", "log-commits", DurableLogCommitManager.SlotsFileName);
        await Db.Database.CloseAsync(checkpoint: false);
        byte[] bytes = File.ReadAllBytes(slots);
        if (flippedByte >= 0)
        {
            // The first record goes to the first slot.
            bytes[flippedByte] ^= 0x01;
        }
        else
        {
            bytes = bytes[..keptBytes];
        }

        File.WriteAllBytes(slots, bytes);
        Assert.Contains($"the commit record in slot 0 of {slots} is damaged: {damage}", OpenError(), StringComparison.Ordinal);
    }

    [Fact]
    public void Entries_are_checksummed_and_numbered_and_entries_of_the_first_format_still_read()
    {
        var concept = new ConceptRecord(4, "c", [1f, 2f], new Dictionary<string, string> { ["k"] = "v" });
        List<Mutation> batch = [new Mutation.PutConcept(concept), new Mutation.DeleteEdge(9)];
        using var stream = new MemoryStream();
        byte[] entry = RecordCodec.EncodeBatch(7, batch, stream, null, out _, out _).ToArray();

        LoggedBatch read = RecordCodec.DecodeBatch(entry);
        Assert.Equal(7, read.Sequence);
        AssertSameBatch(batch, read.Mutations);

        // Format 1: the version, then the count and mutations, with no checksum or sequence.
        byte[] firstFormat = [1, .. entry[(1 + sizeof(uint) + sizeof(long))..]];
        LoggedBatch old = RecordCodec.DecodeBatch(firstFormat);
        Assert.Null(old.Sequence);
        AssertSameBatch(batch, old.Mutations);

        for (int i = 1; i < entry.Length; i++)
        {
            byte[] flipped = [.. entry];
            flipped[i] ^= 0x01;
            Assert.Throws<InvalidDataException>(() => RecordCodec.DecodeBatch(flipped));
            Assert.Null(RecordCodec.ChecksummedSequence(flipped));
        }
    }

    // Bytes past the committed end are checked for whole, checksummed batches by their header
    // alone. Leftovers that read as the first format were decoded, and threw what no catch
    // expected, making the collection unopenable: here a relation claiming -1 compositions.
    [Fact]
    public void Leftover_bytes_are_told_from_checksummed_batches_without_decoding_them()
    {
        using var stream = new MemoryStream();
        byte[] entry = RecordCodec.EncodeBatch(7, [new Mutation.DeleteEdge(9)], stream, null, out _, out _).ToArray();
        Assert.Equal(7, RecordCodec.ChecksummedSequence(entry));

        byte[] FirstFormat(RelationRecord relation)
        {
            byte[] encoded = RecordCodec.EncodeBatch(1, [new Mutation.PutRelation(relation)], stream, null, out _, out _).ToArray();
            return [1, .. encoded[(1 + sizeof(uint) + sizeof(long))..]];
        }

        var plain = new RelationRecord(0, "r", null, Symmetric: false, Transitive: false, InverseId: -1, []);
        byte[] leftover = FirstFormat(plain);
        byte[] composed = FirstFormat(plain with { Compositions = [(0, 0)] });
        int countAt = Enumerable.Range(0, leftover.Length).First(i => leftover[i] != composed[i]);
        BinaryPrimitives.WriteInt32LittleEndian(leftover.AsSpan(countAt), -1);

        Assert.Throws<OverflowException>(() => RecordCodec.DecodeBatch(leftover));
        Assert.Null(RecordCodec.ChecksummedSequence(leftover));
    }

    // The state store stores each record from the log entry that logged it, at replay too, so an
    // entry's bounds must frame each record exactly: an entry of the first format may hold bytes
    // after its mutations, which were stored as part of its last record.
    [Fact]
    public void Each_mutation_of_an_entry_is_framed_as_the_store_stores_it_in_both_formats()
    {
        var concept = new ConceptRecord(4, "c", [1f, 2f], new Dictionary<string, string> { ["k"] = "v" });
        var edge = new EdgeRecord(9, 4, 0, 4, 0.5f, null);
        List<Mutation> batch = [new Mutation.DeleteEdge(3), new Mutation.PutConcept(concept), new Mutation.PutEdge(edge)];
        using var stream = new MemoryStream();
        var encoded = new List<int>();
        byte[] entry = RecordCodec.EncodeBatch(7, batch, stream, encoded, out _, out _).ToArray();
        byte[] firstFormat = [1, .. entry[(1 + sizeof(uint) + sizeof(long))..], 0, 0, 0, 0];

        foreach ((byte[] bytes, List<int> bounds) in new[] { (entry, encoded), (entry, RecordCodec.DecodeBatch(entry).MutationBounds), (firstFormat, RecordCodec.DecodeBatch(firstFormat).MutationBounds) })
        {
            Assert.Equal(batch.Count + 1, bounds.Count);
            StoredMutation delete = RecordCodec.StoredMutation(bytes.AsSpan(bounds[0]..bounds[1]));
            Assert.True(delete.IsDelete);
            Assert.Equal((RecordKind.Edge, 3), (delete.Kind, delete.Id));
            StoredMutation putConcept = RecordCodec.StoredMutation(bytes.AsSpan(bounds[1]..bounds[2]));
            Assert.Equal((RecordKind.Concept, 4), (putConcept.Kind, putConcept.Id));
            Assert.Equal(Encoding(writer => RecordCodec.Write(writer, concept)), putConcept.Record.ToArray());
            StoredMutation putEdge = RecordCodec.StoredMutation(bytes.AsSpan(bounds[2]..bounds[3]));
            Assert.Equal((RecordKind.Edge, 9), (putEdge.Kind, putEdge.Id));
            Assert.Equal(Encoding(writer => RecordCodec.Write(writer, edge)), putEdge.Record.ToArray());
        }

        static byte[] Encoding(Action<BinaryWriter> write)
        {
            using var record = new MemoryStream();
            using var writer = new BinaryWriter(record);
            write(writer);
            writer.Flush();
            return record.ToArray();
        }
    }

    private static void AssertSameBatch(List<Mutation> expected, List<Mutation> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        var put = Assert.IsType<Mutation.PutConcept>(actual[0]);
        var original = (Mutation.PutConcept)expected[0];
        Assert.Equal((original.Concept.Id, original.Concept.Name), (put.Concept.Id, put.Concept.Name));
        Assert.Equal(original.Concept.Vector, put.Concept.Vector);
        Assert.Equal(original.Concept.Metadata, put.Concept.Metadata);
        Assert.Equal(expected[1], actual[1]);
    }
}
