using System.Buffers.Binary;
using System.Text.Json.Nodes;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Storage;

// A damaged record in the state store's files must stop the open, naming the record and where it
// lies. FASTER keeps no checksums: a flipped byte was served after a restart as a wrong fact or
// vector, and the next checkpoint made it permanent. Records written before checksums still read.
public sealed class StateDamageTests : DatabaseTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(1);

    private static float[] Vector(int seed) => [.. Enumerable.Range(0, 8).Select(i => (float)((seed * 10) + i + 1))];

    /// <summary>Concepts with vectors and metadata, relations with properties, facts with weights
    /// and a payload, and an ingest session's mark: every kind of record.</summary>
    private static async Task WriteSampleAsync(Collection collection)
    {
        (await collection.UpsertConceptsAsync([
            new ConceptInput("alice", Vector(1), new Dictionary<string, string> { ["kind"] = "person" }),
            new ConceptInput("bob", Vector(2)),
            new ConceptInput("carol"),
        ])).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("knows", Vector(3), Symmetric: true))).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("parent_of", InverseOf: "child_of"))).AssertOk();
        (await collection.AddFactsAsync([
            new FactInput("alice", "knows", "bob", 0.5f, new Dictionary<string, string> { ["since"] = "2019" }),
            new FactInput("alice", "parent_of", "carol"),
            new FactInput("bob", "parent_of", "dave"),
        ])).AssertOk();
        (await collection.IngestAsync(new IngestBatch("load-1", 0, [], [new FactInput("carol", "knows", "dave")]))).AssertOk();
    }

    private string StateFolder => Path.Combine(Db.Get().Directory, "state");

    /// <summary>A collection holding the sample, closed with a checkpoint; returns its state folder.</summary>
    private async Task<string> ClosedSampleAsync()
    {
        Collection collection = Db.Create();
        await WriteSampleAsync(collection);
        string state = StateFolder;
        await Db.Database.CloseAsync(checkpoint: true);
        return state;
    }

    /// <summary>The collection's state store, opened directly as the collection opens it (the
    /// database must be closed).</summary>
    private StateStore OpenStore(string stateFolder) =>
        new(stateFolder, Db.Options.StateIndexBytes, Db.Options.StateMemoryBytes, Db.Options.StateSegmentBytes);

    /// <summary>Every live record: kind, id and encoding, in order.</summary>
    private static List<(RecordKind Kind, int Id, byte[] Encoding)> Records(StateStore store)
    {
        var records = new List<(RecordKind, int, byte[])>();
        store.ForEach((kind, id, encoding) => records.Add((kind, id, encoding.ToArray())));
        return [.. records.OrderBy(record => record.Item1).ThenBy(record => record.Item2)];
    }

    private List<(RecordKind Kind, int Id, byte[] Encoding)> Records(string stateFolder)
    {
        using StateStore store = OpenStore(stateFolder);
        return Records(store);
    }

    private static void AssertSameRecords(List<(RecordKind Kind, int Id, byte[] Encoding)> expected, List<(RecordKind Kind, int Id, byte[] Encoding)> actual)
    {
        Assert.Equal(expected.Select(record => (record.Kind, record.Id)), actual.Select(record => (record.Kind, record.Id)));
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i].Encoding.AsSpan().SequenceEqual(actual[i].Encoding), $"{expected[i].Kind} record {expected[i].Id} differs");
        }
    }

    private static void AssertSample(Collection collection)
    {
        ConceptInfo alice = collection.GetConcept("alice").AssertOk();
        Assert.Equal(Vector(1), alice.Vector);
        Assert.Equal("person", alice.Metadata["kind"]);
        Assert.Equal(NameVector.For("carol", 8), collection.GetConcept("carol").AssertOk().Vector);
        Assert.True(collection.GetRelation("knows").AssertOk().Symmetric);
        Assert.Equal("child_of", collection.GetRelation("parent_of").AssertOk().InverseOf);
        EdgeView knows = Assert.Single(collection.Neighbors("bob", "knows").AssertOk());
        Assert.Equal((new FactKey("alice", "knows", "bob"), 0.5f, "2019"), (knows.Fact, knows.Weight, knows.Payload["since"]));
        Assert.Equal("alice", Assert.Single(collection.Related("carol", "child_of").AssertOk()).Concept);
        Assert.Equal(new CollectionInfo("test", 8, Metric.Cosine, StoragePrecision.Float32, 4, 3, 4) { Folder = Path.GetFileName(collection.Directory) }, collection.Describe().AssertOk());
    }

    private string OpenError() => Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options)).Message;

    public enum Damage
    {
        ConceptVector,
        EdgeTail,
        EdgeChecksum,
        EdgeKey,
    }

    // A flipped byte of a vector read back as another vector, of an edge's tail as another fact.
    [Theory]
    [InlineData(Damage.ConceptVector)]
    [InlineData(Damage.EdgeTail)]
    [InlineData(Damage.EdgeChecksum)]
    [InlineData(Damage.EdgeKey)]
    public async Task A_flipped_byte_in_a_stored_record_stops_the_open_naming_the_record_and_its_file(Damage damage)
    {
        Collection collection = Db.Create();
        await WriteSampleAsync(collection);
        int alice = collection.GetConcept("alice").AssertOk().Id;
        string file = Path.Combine(StateFolder, "hlog.log.0");
        await Db.Database.CloseAsync(checkpoint: true);

        // Offsets in the value: the id's complement, the checksum, then (an edge's) head, relation,
        // tail, weight; 15 bytes before it, the key's id.
        (RecordKind kind, int id, int offset, string named) = damage switch
        {
            Damage.ConceptVector => (RecordKind.Concept, alice, 8 + 1 + "alice".Length + 4 + 2, $"Concept record {alice}"),
            Damage.EdgeTail => (RecordKind.Edge, 1, 8 + 8, "Edge record 1"),
            Damage.EdgeChecksum => (RecordKind.Edge, 1, 4, "Edge record 1"),
            _ => (RecordKind.Edge, 1, -15, "Edge record 0"),
        };
        (long record, long value) = StateLogBytes.Find(file, kind, id);
        Assert.Equal(~id, BinaryPrimitives.ReadInt32LittleEndian(File.ReadAllBytes(file).AsSpan((int)value)));
        StateLogBytes.Xor(file, value + offset, 0x01);

        string error = OpenError();
        Assert.StartsWith("collection 'test'", error, StringComparison.Ordinal);
        Assert.Contains($"the state store's {named} is damaged ({file}, offset {record})", error, StringComparison.Ordinal);
        Assert.Contains(damage == Damage.EdgeKey ? "its value names id 1, not 0" : "its checksum is", error, StringComparison.Ordinal);
    }

    // FASTER's scan of live records takes a record whose key no longer leads its chain in the hash
    // index for an older version and passes over it. A concept whose key was damaged into that of a
    // concept updated later vanished without a word: only its own record said it was there.
    [Fact]
    public async Task A_record_moved_by_damage_onto_a_key_written_again_later_stops_the_open()
    {
        Collection collection = Db.Create();
        (await collection.UpsertConceptsAsync([new ConceptInput("c0", Vector(0)), new ConceptInput("c1", Vector(1))])).AssertOk();
        (await collection.CheckpointAsync()).AssertOk();
        (await collection.UpsertConceptsAsync([new ConceptInput("c1", Vector(2))])).AssertOk();
        string file = Path.Combine(StateFolder, "hlog.log.0");
        await Db.Database.CloseAsync(checkpoint: true);

        (long record, long value) = StateLogBytes.Find(file, RecordKind.Concept, 0);
        StateLogBytes.Xor(file, value - 15, 0x01);

        Assert.Contains($"the state store's Concept record 1 is damaged ({file}, offset {record}): its value names id 0, not 1", OpenError(), StringComparison.Ordinal);
    }

    // An all-zero value of record 0 starts with its id, as a record written before checksums does:
    // edge 0 read back as a fact between concept 0 and itself. A store created with checksums never
    // held a record without one, so it takes none.
    [Fact]
    public async Task A_zeroed_record_in_a_store_created_with_checksums_stops_the_open()
    {
        string file = Path.Combine(await ClosedSampleAsync(), "hlog.log.0");

        (long record, long value) = StateLogBytes.Find(file, RecordKind.Edge, 0);
        int length = BinaryPrimitives.ReadInt32LittleEndian(File.ReadAllBytes(file).AsSpan((int)value - 4));
        using (FileStream stream = File.OpenWrite(file))
        {
            stream.Position = value;
            stream.Write(new byte[length]);
        }

        Assert.Contains($"the state store's Edge record 0 is damaged ({file}, offset {record}): it has no checksum", OpenError(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Records_are_stored_with_checksums_and_reopen_as_written()
    {
        string state = await ClosedSampleAsync();
        List<(RecordKind Kind, int Id, byte[] Encoding)> written = Records(state);
        Assert.Equal([RecordKind.Concept, RecordKind.Relation, RecordKind.Edge, RecordKind.IngestMark], written.Select(record => record.Kind).Distinct());
        byte[] log = File.ReadAllBytes(Path.Combine(state, "hlog.log.0"));
        foreach ((RecordKind kind, int id, byte[] encoding) in written)
        {
            (_, long value) = StateLogBytes.Find(Path.Combine(state, "hlog.log.0"), kind, id);
            Assert.Equal(~id, BinaryPrimitives.ReadInt32LittleEndian(log.AsSpan((int)value)));
            Assert.Equal(encoding.Length + StateRecord.AddedBytes, BinaryPrimitives.ReadInt32LittleEndian(log.AsSpan((int)value - 4)));
        }

        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(state, "layout.json")))!["RecordsChecksummed"]!.GetValue<bool>());
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertSample(Db.Get());
        await Db.Database.CloseAsync(checkpoint: true);
        AssertSameRecords(written, Records(state));
    }

    // A store written before checksums: every record is its bare encoding, and its layout file does
    // not say that records are checksummed. It opens as it was, takes checksummed records beside
    // its old ones, and reopens with both.
    [Fact]
    public async Task Records_written_before_checksums_still_open_with_the_same_contents()
    {
        string state = await ClosedSampleAsync();
        List<(RecordKind Kind, int Id, byte[] Encoding)> written = Records(state);
        await RewriteAsBeforeChecksumsAsync(state);
        (_, long value) = StateLogBytes.Find(Path.Combine(state, "hlog.log.0"), RecordKind.Edge, 2);
        Assert.Equal(2, BinaryPrimitives.ReadInt32LittleEndian(File.ReadAllBytes(Path.Combine(state, "hlog.log.0")).AsSpan((int)value)));

        await Db.ReopenAsync(checkpointOnClose: false);
        AssertSample(Db.Get());
        (await Db.Get().AddFactsAsync([new FactInput("dave", "knows", "erin")])).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: true);
        Assert.Equal("dave", Assert.Single(Db.Get().Related("erin", "knows").AssertOk()).Concept);
        Assert.Equal(5, Db.Get().Describe().AssertOk().FactCount);
        await Db.Database.CloseAsync(checkpoint: true);

        Assert.False(JsonNode.Parse(File.ReadAllText(Path.Combine(state, "layout.json")))!.AsObject().ContainsKey("RecordsChecksummed"));
        AssertSameRecords(written, Records(state).Where(record => written.Any(old => (old.Kind, old.Id) == (record.Kind, record.Id))).ToList());
    }

    /// <summary>Rewrites every live record of a closed collection's store as versions before
    /// checksums stored it (the bare encoding), with a checkpoint covering what the last one
    /// covered, and its layout file as they wrote it (page and file sizes only).</summary>
    private async Task RewriteAsBeforeChecksumsAsync(string stateFolder)
    {
        using (StateStore store = OpenStore(stateFolder))
        {
            List<(RecordKind Kind, int Id, byte[] Encoding)> records = Records(store);
            using (StateStore.Writer writer = store.BeginWrites())
            {
                foreach ((RecordKind kind, int id, byte[] encoding) in records)
                {
                    writer.Upsert(kind, id, encoding);
                }
            }

            Assert.Null(await store.CheckpointAsync(store.RecoveredLogAddress, store.RecoveredLogSequence!.Value, store.RecoveredSupersededBytes, Generous));
        }

        string layout = Path.Combine(stateFolder, "layout.json");
        JsonObject fields = JsonNode.Parse(File.ReadAllText(layout))!.AsObject();
        fields.Remove("RecordsChecksummed");
        File.WriteAllText(layout, fields.ToJsonString());
    }

    // FASTER's compaction keeps a record if the hash index leads to it from its key: a record whose
    // key was damaged into one written again later was dropped as superseded, and the key it came
    // from fell back to nothing, for good once the next checkpoint deleted the file.
    [Fact]
    public async Task Compaction_stops_at_a_damaged_record_and_leaves_it_in_the_log()
    {
        using var folder = new TempDirectory();
        string state = Path.Combine(folder.Path, "state");
        var payload = new Dictionary<string, string> { ["blob"] = new string('x', 1000) };

        // 1 KiB records in 64 KiB files and pages, with 1 MiB of memory: the first records are
        // read back from their file, as written, at the reopen.
        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 16))
        {
            StateLogBytes.WriteEdges(store, 0, 2000, payload);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));
            StateLogBytes.WriteEdges(store, 1000, 2000, payload);
            Assert.Null(await store.CheckpointAsync(200, 2, 0, Generous));
        }

        string file = Path.Combine(state, "hlog.log.0");
        // Edge 5's key, its id's second byte flipped: edge 1029 (0x405), rewritten since.
        (long record, long value) = StateLogBytes.Find(file, RecordKind.Edge, 5);
        StateLogBytes.Xor(file, value - 14, 0x04);

        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 16))
        {
            long tail = store.TailAddress;
            InvalidDataException error = Assert.Throws<InvalidDataException>(store.Compact);
            Assert.Contains($"the state store's Edge record 1029 is damaged ({file}, offset {record}): its value names id 5, not 1029", error.Message, StringComparison.Ordinal);

            // The log's begin address did not move past it, and nothing was copied: a compaction
            // stopped part way left its copies, and every later checkpoint copied the records again.
            Assert.Throws<InvalidDataException>(() => store.ForEach((_, _, _) => { }));
            Assert.Equal(tail, store.TailAddress);
        }
    }

    // A checkpoint compacts once half the log is superseded. One that met a damaged record failed,
    // and every later checkpoint with it (the compaction still due), so the log grew until the
    // store was restored from a backup, although memory held every record whole: the live records
    // are written again from memory, and the damaged file is deleted with the log before them.
    [Fact]
    public async Task A_checkpoint_whose_compaction_meets_a_damaged_record_rewrites_the_store_from_memory()
    {
        // 64 KiB pages and files and 256 KiB of memory: the first version's pages are read back
        // from their files.
        await using var small = new TestDatabase(stateMemoryBytes: 1L << 18, stateSegmentBytes: 1L << 16);
        Collection collection = small.Create();
        for (int version = 0; version < 2; version++)
        {
            for (int start = 0; start < 5000; start += 500)
            {
                (await collection.UpsertConceptsAsync([.. Enumerable.Range(start, 500).Select(c => new ConceptInput($"c{c}", Vector(c + version)))])).AssertOk();
            }

            if (version == 0)
            {
                (await collection.CheckpointAsync()).AssertOk();
            }
        }

        (await collection.DefineRelationAsync(new RelationSpec("knows", InverseOf: "known_by"))).AssertOk();
        (await collection.AddFactsAsync([new FactInput("c1", "knows", "c2", 0.5f, new Dictionary<string, string> { ["since"] = "2019" })])).AssertOk();
        (await collection.IngestAsync(new IngestBatch("load-1", 0, [], [new FactInput("c3", "knows", "c4")]))).AssertOk();
        (await collection.DeleteConceptsAsync(["c7"])).AssertOk();
        int id = collection.GetConcept("c5").AssertOk().Id;
        string file = Path.Combine(collection.Directory, "state", "hlog.log.0");
        (_, long value) = StateLogBytes.Find(file, RecordKind.Concept, id);
        StateLogBytes.Xor(file, value + 12, 0x01);

        (await collection.CheckpointAsync()).AssertOk();
        Assert.False(File.Exists(file), "the damaged file outlived the checkpoint");
        await small.ReopenAsync(checkpointOnClose: false);
        collection = small.Get();
        Assert.Equal(4999, collection.Describe().AssertOk().ConceptCount);
        for (int c = 0; c < 5000; c++)
        {
            Result<ConceptInfo> concept = collection.GetConcept($"c{c}");
            Assert.Equal(c == 7 ? null : Vector(c + 1), concept.IsOk ? concept.Value.Vector : null);
        }

        EdgeView knows = Assert.Single(collection.Neighbors("c2", "knows").AssertOk());
        Assert.Equal((new FactKey("c1", "knows", "c2"), 0.5f, "2019"), (knows.Fact, knows.Weight, knows.Payload["since"]));
        Assert.Equal("c4", Assert.Single(collection.Related("c3", "knows").AssertOk()).Concept);
        Assert.Equal(0, collection.LastIngestedSequence("load-1"));
    }
}
