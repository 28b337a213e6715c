using System.Buffers.Binary;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// A damaged record header or length in the state store's log must stop the open with an error
// naming the file and offset, before FASTER reads it: FASTER trusts them, and a key length flipped
// in hlog.log.N ended the process with an AccessViolationException (uncatchable) in its recovery,
// taking every other collection with it; a flipped value length or header dropped a fact without
// a word. Logs FASTER wrote whole (updates in place, deletes, compactions, many pages) still open.
public sealed class LogFramingTests : DatabaseTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(1);

    public enum Flipped
    {
        /// <summary>Bytes 0-3 of the header: the low half of the link to the key's previous version.</summary>
        HeaderLowWord,

        /// <summary>Bytes 4-7: the link's high bits (the read-cache bit among them), locks and flags.</summary>
        HeaderHighWord,

        /// <summary>The key's length: FASTER read up to a gigabyte past the page (the crash).</summary>
        KeyLength,

        /// <summary>The value's length: FASTER's scan skipped the rest of the page.</summary>
        ValueLength,
    }

    /// <summary>A collection with three concepts and two facts, closed with a checkpoint; returns
    /// its store's first log file and where fact 1's record starts in it.</summary>
    private async Task<(string File, long Record)> ClosedSampleAsync()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("alice", "knows", "bob"), new FactInput("bob", "knows", "carol")])).AssertOk();
        string file = Path.Combine(collection.Directory, "state", "hlog.log.0");
        await Db.Database.CloseAsync(checkpoint: true);
        return (file, StateLogBytes.Find(file, RecordKind.Edge, 1).Record);
    }

    private string OpenError() => Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options)).Message;

    [Theory]
    [InlineData(Flipped.HeaderLowWord)]
    [InlineData(Flipped.HeaderHighWord)]
    [InlineData(Flipped.KeyLength)]
    [InlineData(Flipped.ValueLength)]
    public async Task Four_flipped_bytes_of_a_record_header_stop_the_open_naming_the_file_and_offset(Flipped flipped)
    {
        (string file, long record) = await ClosedSampleAsync();
        int offset = flipped switch
        {
            Flipped.HeaderLowWord => 0,
            Flipped.HeaderHighWord => 4,
            Flipped.KeyLength => 8,
            _ => 24,
        };
        int valueLength = BinaryPrimitives.ReadInt32LittleEndian(File.ReadAllBytes(file).AsSpan((int)record + 24));
        StateLogBytes.Xor(file, record + offset, [0xFF, 0xFF, 0xFF, 0xFF]);

        string error = OpenError();
        Assert.StartsWith("collection 'test'", error, StringComparison.Ordinal);
        string named = flipped == Flipped.KeyLength ? "record" : "Edge record 1";
        Assert.Contains($"the state store's {named} is damaged ({file}, offset {record}): ", error, StringComparison.Ordinal);
        Assert.Contains(
            flipped switch
            {
                Flipped.HeaderLowWord => $"its header links it to address {0xFFFFFFFE}, not before it",
                Flipped.HeaderHighWord => "its header links it to FASTER's read cache",
                Flipped.KeyLength => $"its key's length reads {~StateRecord.KeyBytes}; every key is {StateRecord.KeyBytes} bytes",
                _ => $"its value's length reads {~valueLength}",
            },
            error,
            StringComparison.Ordinal);
    }

    // A link that points back into the log, but into the middle of a record: FASTER's chain walks
    // would read a record header and key from whatever lies there, and follow its link on.
    [Fact]
    public async Task A_header_linking_into_the_middle_of_a_record_stops_the_open()
    {
        (string file, long record) = await ClosedSampleAsync();
        long concept = StateLogBytes.Find(file, RecordKind.Concept, 0).Record;
        long header = StateLogBytes.ReadInt64(file, record);
        long link = header & ((1L << 48) - 1);
        byte[] mask = new byte[sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(mask, link ^ (concept + 8));
        StateLogBytes.Xor(file, record, mask);

        Assert.Contains(
            $"the state store's Edge record 1 is damaged ({file}, offset {record}): its header links it to address {concept + 8}, where no record starts",
            OpenError(),
            StringComparison.Ordinal);
    }

    // 64 KiB pages and 1 MiB of memory: the first pages are read by the store's scans, not by
    // FASTER's recovery, which loads only the last pages into memory.
    [Fact]
    public async Task A_flipped_key_length_in_a_page_recovery_leaves_on_disk_stops_the_open()
    {
        using var folder = new TempDirectory();
        string state = Path.Combine(folder.Path, "state");
        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 16))
        {
            WriteEdges(store, 0, 2000, 1000);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));
        }

        string file = Path.Combine(state, "hlog.log.0");
        long record = StateLogBytes.Find(file, RecordKind.Edge, 5).Record;
        StateLogBytes.Xor(file, record + 8, [0x00, 0x00, 0x01, 0x00]);

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => new StateStore(state, 1L << 16, 1L << 20, 1L << 16));
        Assert.Contains($"the state store's record is damaged ({file}, offset {record}): its key's length reads {StateRecord.KeyBytes | 0x10000}", error.Message, StringComparison.Ordinal);
    }

    // What FASTER writes is walked as FASTER walks it: values shrunk by updates in place (the space
    // they freed is zeroed), deletes in place (a tombstone keeps its value) and appended, records
    // copied by a compaction, and pages a record did not fit at the end of.
    [Fact]
    public async Task A_log_of_updates_in_place_deletes_and_compactions_over_many_pages_still_opens()
    {
        using var folder = new TempDirectory();
        string state = Path.Combine(folder.Path, "state");
        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 16))
        {
            WriteEdges(store, 0, 3000, 600);
            WriteEdges(store, 2900, 3000, 100);
            Delete(store, 2950, 3000);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));
            WriteEdges(store, 0, 1000, 300);
            Delete(store, 0, 100);
            store.Compact();
            Assert.Null(await store.CheckpointAsync(200, 2, 0, Generous));
            WriteEdges(store, 2000, 2010, 50);
            WriteEdges(store, 2000, 2010, 10);
        }

        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 16))
        {
            var payloads = new Dictionary<int, int>();
            store.ForEach((kind, id, encoding) => payloads[id] = RecordCodec.DecodeEdge(encoding).Payload!["blob"].Length);
            Assert.Equal(2850, payloads.Count);
            Assert.Equal([300, 600, 100], new[] { 100, 1000, 2900 }.Select(id => payloads[id]));
            Assert.False(payloads.ContainsKey(50) || payloads.ContainsKey(2950));
        }
    }

    private static void WriteEdges(StateStore store, int from, int to, int payloadBytes) =>
        StateLogBytes.WriteEdges(store, from, to, new Dictionary<string, string> { ["blob"] = new string('x', payloadBytes) });

    private static void Delete(StateStore store, int from, int to)
    {
        using StateStore.Writer writer = store.BeginWrites();
        for (int id = from; id < to; id++)
        {
            writer.Delete(RecordKind.Edge, id);
        }
    }
}
