using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Storage;

// Guards durability across restarts: what was acknowledged before a close — or before a checkpoint
// followed by more writes — is exactly what a reopen finds, vectors bit for bit.
public sealed class RestartTests : DatabaseTests
{
    private static float[] Vector(int seed, int dimension)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, dimension).Select(_ => (float)(random.NextDouble() * 2 - 1) * 1e3f).ToArray();
    }

    // FASTER catches its own recovery errors and opens empty. A state checkpoint or log commit that
    // cannot be read must stop the open: it used to give a collection missing everything before the
    // last checkpoint (or every write after it), which the next checkpoint then made permanent.
    [Theory]
    [InlineData("state/checkpoints")]
    [InlineData("wal/log-commits")]
    public async Task A_state_store_or_log_that_cannot_be_recovered_stops_the_open(string lost)
    {
        Collection collection = Db.Create();
        await WriteSampleAsync(collection);
        (await collection.CheckpointAsync()).AssertOk();
        (await collection.AddFactsAsync([new FactInput("bob", "knows", "carol")])).AssertOk();
        string directory = collection.Directory;
        await Db.Database.CloseAsync(checkpoint: false);

        Directory.Delete(Path.Combine(directory, lost), recursive: true);
        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AssocDatabase.Open(Db.Options));
        Assert.Contains("cannot be recovered", error.Message, StringComparison.Ordinal);
    }

    // A drop frees its name only once its folder is gone. A create of the same name on another
    // thread in between used to fail with a raw IOException from the folder rename (the old folder
    // was still there); it is refused with FailedPrecondition instead, or succeeds after the drop.
    [Fact]
    public async Task Creating_a_name_while_it_is_being_dropped_is_refused_cleanly()
    {
        for (int i = 0; i < 30; i++)
        {
            if (!Db.Database.GetCollection("churn").IsOk)
            {
                Db.Create("churn");
            }

            using var start = new Barrier(2);
            Task<Result<bool>> drop = Task.Run(async () =>
            {
                start.SignalAndWait();
                return await Db.Database.DropCollectionAsync("churn");
            });
            Task<Result<CollectionInfo>> create = Task.Run(() =>
            {
                start.SignalAndWait();
                Result<CollectionInfo> created;
                // Until the drop has taken the name, the create finds it still there.
                while ((created = Db.Database.CreateCollection(new CollectionSpec("churn", 8))).Error?.Code == ErrorCode.AlreadyExists)
                {
                    Thread.Yield();
                }

                return created;
            });
            (await drop).AssertOk();
            Result<CollectionInfo> result = await create;
            Assert.True(result.IsOk || (result.Error!.Code, result.Error.Field) == (ErrorCode.FailedPrecondition, "name"), $"create during a drop: {result.Error}");
        }
    }

    private async Task WriteSampleAsync(Collection collection)
    {
        (await collection.UpsertConceptsAsync([
            new ConceptInput("alice", Vector(1, 8), new Dictionary<string, string> { ["kind"] = "person" }),
            new ConceptInput("bob", Vector(2, 8)),
            new ConceptInput("carol"),
        ])).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("knows", Vector(3, 8), Symmetric: true))).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("parent_of", InverseOf: "child_of"))).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("ancestor_of", Transitive: true,
            Compositions: [new Composition("parent_of", "parent_of")]))).AssertOk();
        (await collection.AddFactsAsync([
            new FactInput("alice", "knows", "bob", 0.5f, new Dictionary<string, string> { ["since"] = "2019" }),
            new FactInput("alice", "parent_of", "carol"),
        ])).AssertOk();
    }

    private static void AssertSample(Collection collection)
    {
        ConceptInfo alice = collection.GetConcept("alice").AssertOk();
        Assert.Equal(Vector(1, 8), alice.Vector);
        Assert.Equal("person", alice.Metadata["kind"]);
        Assert.Equal(Vector(2, 8), collection.GetConcept("bob").AssertOk().Vector);
        Assert.Equal(NameVector.For("carol", 8), collection.GetConcept("carol").AssertOk().Vector);

        RelationInfo knows = collection.GetRelation("knows").AssertOk();
        Assert.True(knows.Symmetric);
        Assert.Equal(Vector(3, 8), knows.Vector);
        Assert.Equal("child_of", collection.GetRelation("parent_of").AssertOk().InverseOf);
        RelationInfo ancestor = collection.GetRelation("ancestor_of").AssertOk();
        Assert.True(ancestor.Transitive);
        Assert.Equal([new Composition("parent_of", "parent_of")], ancestor.Compositions);

        EdgeView edge = Assert.Single(collection.Neighbors("bob").AssertOk());
        Assert.Equal((new FactKey("alice", "knows", "bob"), 0.5f, "2019"), (edge.Fact, edge.Weight, edge.Payload["since"]));
        Assert.Equal("alice", Assert.Single(collection.Related("carol", "child_of").AssertOk()).Concept);
        Assert.Equal("alice", Assert.Single(collection.Related("bob", "knows").AssertOk()).Concept);
    }

    [Fact]
    public async Task Everything_survives_a_clean_close_and_reopen()
    {
        await WriteSampleAsync(Db.Create());
        await Db.ReopenAsync();
        AssertSample(Db.Get());
        Assert.Equal(new CollectionInfo("test", 8, Metric.Cosine, StoragePrecision.Float32, 3, 4, 2) { Folder = Path.GetFileName(Db.Get().Directory) }, Db.Get().Describe().AssertOk());
    }

    [Fact]
    public async Task Writes_after_a_checkpoint_are_replayed_from_the_log()
    {
        Collection collection = Db.Create();
        await WriteSampleAsync(collection);
        await collection.CheckpointAsync();
        (await collection.AddFactsAsync([new FactInput("carol", "parent_of", "dave")])).AssertOk();
        (await collection.DeleteConceptsAsync(["bob"])).AssertOk();
        (await collection.UpsertConceptsAsync([new ConceptInput("bob", Vector(2, 8))])).AssertOk();
        (await collection.AddFactsAsync([new FactInput("alice", "knows", "bob", 0.5f, new Dictionary<string, string> { ["since"] = "2019" })])).AssertOk();

        await Db.ReopenAsync(checkpointOnClose: false);

        collection = Db.Get();
        AssertSample(collection);
        Answer grandchild = Assert.Single(collection.Related("alice", "ancestor_of").AssertOk(), answer => answer.Concept == "dave");
        Assert.Equal(AnswerKind.Derived, grandchild.Kind);
    }

    [Fact]
    public async Task A_checkpoint_right_after_a_large_write_captures_all_of_it()
    {
        // The store's upserts of a batch finish in the background; the checkpoint (which truncates
        // the log) must wait for them, or the reopened collection would miss the batch.
        Collection collection = Db.Create();
        FactInput[] facts = Enumerable.Range(0, 45_000).Select(i => new FactInput($"h{i}", $"r{i % 7}", $"t{i % 1000}")).ToArray();
        (await collection.AddFactsAsync(facts)).AssertOk();
        await collection.CheckpointAsync();
        Assert.False(collection.HasUncheckpointedWrites);

        await Db.ReopenAsync(checkpointOnClose: false);

        Assert.Equal(new CollectionInfo("test", 8, Metric.Cosine, StoragePrecision.Float32, 46_000, 7, 45_000) { Folder = Path.GetFileName(Db.Get().Directory) }, Db.Get().Describe().AssertOk());
        Assert.Equal("t123", Assert.Single(Db.Get().Neighbors("h44123").AssertOk()).Other);
    }

    [Fact]
    public async Task A_record_larger_than_a_state_store_page_is_refused_before_it_is_logged()
    {
        // A 1 MiB store memory has 256 KiB pages; a 300 kB record fits the log (4 MiB pages) but not
        // the store. Logged, it would fail to apply at every replay and the database could never
        // open again: it is refused, naming the field, and everything else goes on.
        await using var small = new TestDatabase(stateMemoryBytes: 1L << 20);
        Collection collection = small.Create();
        (await collection.AddFactsAsync([new FactInput("a", "r", "b")])).AssertOk();
        var blob = new Dictionary<string, string> { ["blob"] = new string('x', 300_000) };
        (await collection.UpsertConceptsAsync([new ConceptInput("c", Metadata: blob)])).AssertError(ErrorCode.ResourceExhausted, "metadata");
        (await collection.AddFactsAsync([new FactInput("a", "r", "d", Payload: blob)])).AssertError(ErrorCode.ResourceExhausted, "payload");

        (await collection.AddFactsAsync([new FactInput("a", "r", "c")])).AssertOk();
        await small.ReopenAsync(checkpointOnClose: false);
        Collection reopened = small.Get();
        Assert.Equal(["b", "c"], reopened.Neighbors("a").AssertOk().Select(edge => edge.Other).Order());
        Assert.False(reopened.GetConcept("d").IsOk);
    }

    // Of two proofs alike in kind, length and confidence, the first found was kept; which came first
    // followed the adjacency lists' order, which a delete changes (the last entry fills the gap) and
    // a reopen rebuilds, so the same question got a different proof after a reopen.
    [Fact]
    public async Task Equal_proofs_are_chosen_alike_before_and_after_a_reopen()
    {
        Collection collection = Db.Create();
        (await collection.DefineRelationAsync(new RelationSpec("p"))).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("q"))).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("r", Compositions: [new Composition("p", "q")]))).AssertOk();
        (await collection.AddFactsAsync(
            [new FactInput("a", "p", "x1"), new FactInput("a", "p", "x2"), new FactInput("a", "p", "x3"), new FactInput("x2", "q", "c"), new FactInput("x3", "q", "c")])).AssertOk();
        (await collection.RemoveFactsAsync([new FactKey("a", "p", "x1")])).AssertOk();
        string before = Assert.Single(collection.Related("a", "r").AssertOk()).Proof.ToString();

        await Db.ReopenAsync(checkpointOnClose: true);

        Assert.Equal("a p x2; x2 q c ⊢ p ∘ q ⇒ r", before);
        Assert.Equal(before, Assert.Single(Db.Get().Related("a", "r").AssertOk()).Proof.ToString());
    }

    [Fact]
    public async Task Metadata_and_payloads_enumerate_in_the_same_order_after_a_reopen()
    {
        var map = new Dictionary<string, string> { ["k0"] = "1", ["z"] = "2", ["a"] = "3" };
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("a", "r", "b", Payload: map)])).AssertOk();
        (await collection.UpsertConceptsAsync([new ConceptInput("a", Metadata: map)])).AssertOk();
        string[] Keys(Collection c) => [.. c.GetConcept("a").AssertOk().Metadata.Keys, .. Assert.Single(c.Neighbors("a").AssertOk()).Payload.Keys];
        string[] before = Keys(collection);

        await Db.ReopenAsync(checkpointOnClose: false);

        Assert.Equal(before, Keys(Db.Get()));
    }

    // A store that has not checkpointed starts over at each open, with the options' page; a smaller
    // one then failed the replay of a logged record accepted for the larger page ("Entry does not
    // fit on page"), and with it the whole database's open.
    [Fact]
    public async Task A_logged_record_replays_when_the_memory_option_shrinks_before_any_checkpoint()
    {
        await using var large = new TestDatabase(stateMemoryBytes: 1L << 24);
        var blob = new Dictionary<string, string> { ["blob"] = new string('x', 600_000) };
        (await large.Create().UpsertConceptsAsync([new ConceptInput("c", Metadata: blob)])).AssertOk();

        await large.ReopenAsync(checkpointOnClose: false, stateMemoryBytes: 1L << 20);
        await large.ReopenAsync(checkpointOnClose: false, stateMemoryBytes: 1L << 20);

        Assert.Equal(blob, large.Get().GetConcept("c").AssertOk().Metadata);
    }

    // The limit is exact: a record of the largest size a page takes is stored and replays; one byte
    // more is refused. A 3 MiB store memory gives 768 KiB, which FASTER rounds down to a 512 KiB page.
    [Fact]
    public async Task A_record_of_exactly_the_largest_size_is_stored_and_one_byte_more_is_refused()
    {
        await using var small = new TestDatabase(stateMemoryBytes: 3L << 20);
        Collection collection = small.Create();
        const int MaxValueBytes = (1 << 19) - 64;
        int blobChars = MaxValueBytes - EncodedConceptBytes(blobChars: 0);
        (await collection.UpsertConceptsAsync([new ConceptInput("c", Metadata: Blob(blobChars + 1))])).AssertError(ErrorCode.ResourceExhausted, "metadata");
        (await collection.UpsertConceptsAsync([new ConceptInput("c", Metadata: Blob(blobChars))])).AssertOk();

        await small.ReopenAsync(checkpointOnClose: false);
        Assert.Equal(Blob(blobChars), small.Get().GetConcept("c").AssertOk().Metadata);

        static Dictionary<string, string> Blob(int chars) => new() { ["blob"] = new string('x', chars) };

        // A concept "c" of dimension 8 with a blob of this many characters, less the characters:
        // lengths of 2^14 and more take a 3-byte prefix, as the blob here does.
        static int EncodedConceptBytes(int blobChars)
        {
            using var stream = new MemoryStream();
            using var writer = new BinaryWriter(stream);
            RecordCodec.Write(writer, new ConceptRecord(0, "c", new float[8], Blob(blobChars + (1 << 14))));
            writer.Flush();
            return (int)stream.Length + StateRecord.AddedBytes - (1 << 14);
        }
    }

    // An entry never spans the write-ahead log's pages: a page ends in padding when the next entry
    // does not fit. Read with other pages, replay stopped at that padding and acknowledged writes
    // after it were lost, so a collection keeps the page size it was created with.
    [Fact]
    public async Task A_changed_log_page_option_does_not_change_how_an_existing_log_is_read()
    {
        // 4 MiB pages hold 20 entries of 200 kB; the checkpoint after them leaves replay to start at
        // the padding that ends the first page.
        Collection collection = Db.Create();
        var blob = new string('x', 200_000);
        for (int i = 0; i < 30; i++)
        {
            (await collection.UpsertConceptsAsync([new ConceptInput($"c{i}", Metadata: new Dictionary<string, string> { ["blob"] = blob })])).AssertOk();
            if (i == 19)
            {
                await collection.CheckpointAsync();
            }
        }

        await Db.ReopenAsync(checkpointOnClose: false, logPageSizeBits: 25);
        Assert.Equal(30, Db.Get().Describe().AssertOk().ConceptCount);
        Assert.Equal(blob, Db.Get().GetConcept("c29").AssertOk().Metadata["blob"]);
    }

    [Fact]
    public async Task Reopening_without_any_checkpoint_replays_the_whole_log()
    {
        await WriteSampleAsync(Db.Create());
        await Db.ReopenAsync(checkpointOnClose: false);
        AssertSample(Db.Get());
    }

    [Fact]
    public async Task Dropping_a_collection_deletes_its_files_and_it_stays_gone_after_reopen()
    {
        Collection collection = Db.Create("doomed");
        await WriteSampleAsync(collection);
        Assert.True((await Db.Database.DropCollectionAsync("doomed")).AssertOk());

        Assert.Empty(Directory.EnumerateDirectories(Db.Folder));
        Db.Database.GetCollection("doomed").AssertError(ErrorCode.NotFound, "collection");
        await Db.ReopenAsync();
        Assert.Empty(Db.Database.ListCollections());
    }

    [Fact]
    public async Task Periodic_checkpoints_capture_writes_and_truncate_the_log()
    {
        // Writes set the flag that only a checkpoint clears. Checked where no timer runs: with one,
        // a tick may land between the last write and the check (at 50 ms one did, on a loaded
        // machine), so below the flag's clearing is waited for, not its setting checked.
        Collection untimed = Db.Create("untimed");
        await WriteSampleAsync(untimed);
        Assert.True(untimed.HasUncheckpointedWrites);

        await using var periodic = new TestDatabase(checkpointInterval: TimeSpan.FromMilliseconds(500));
        Collection collection = periodic.Create();
        await WriteSampleAsync(collection);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (collection.HasUncheckpointedWrites && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.False(collection.HasUncheckpointedWrites, "no periodic checkpoint truncated the log within 10 s");
        await periodic.ReopenAsync(checkpointOnClose: false);
        AssertSample(periodic.Get());
    }

    // A server asked to stop while a long log replays abandons recovery instead of finishing it.
    // Recovery only reads, so the abandoned open leaves nothing behind: the folder is released and
    // the next open recovers every write.
    [Fact]
    public async Task An_abandoned_recovery_releases_the_folder_and_loses_nothing()
    {
        await WriteSampleAsync(Db.Create());
        await Db.Database.CloseAsync(checkpoint: false);

        Assert.ThrowsAny<OperationCanceledException>(() => AssocDatabase.Open(Db.Options, cancellationToken: new CancellationToken(canceled: true)));

        await Db.ReopenAsync(checkpointOnClose: false);
        AssertSample(Db.Get());
    }

    // Each collection holds about 100 MiB of buffers even when empty, and creates were unbounded:
    // a client could take the machine's memory, and the next start would need it all again.
    [Fact]
    public async Task Creates_past_the_collection_limit_are_refused_and_a_fuller_folder_still_opens()
    {
        Db.Create("one");
        Db.Create("two");
        await Db.Database.CloseAsync(checkpoint: true);

        await using AssocDatabase limited = AssocDatabase.Open(Db.Options with { MaxCollections = 1 });
        Assert.Equal(["one", "two"], limited.ListCollections().Select(c => c.Name).Order());
        limited.CreateCollection(new CollectionSpec("three", 4)).AssertError(ErrorCode.ResourceExhausted, "name");
        (await limited.DropCollectionAsync("one")).AssertOk();
        limited.CreateCollection(new CollectionSpec("three", 4)).AssertError(ErrorCode.ResourceExhausted, "name");
        (await limited.DropCollectionAsync("two")).AssertOk();
        limited.CreateCollection(new CollectionSpec("three", 4)).AssertOk();
        Assert.Throws<ArgumentException>(() => AssocDatabase.Open(Db.Options with { MaxCollections = 0 }));
    }

    // StateIndexBytes was not checked: FASTER refused a size below 512 bytes, and overflowed on
    // one of 2^37 and refused any larger, as each collection opened (every collection unavailable,
    // or the database's open failed), and rounded any other size down to a power of two unseen.
    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(256L)]
    [InlineData(1000L)]
    [InlineData((1L << 20) + 1)]
    [InlineData(1L << 37)]
    [InlineData(long.MaxValue)]
    public async Task A_state_index_size_FASTER_cannot_use_is_refused_with_the_options(long indexBytes)
    {
        Collection collection = Db.Create();
        (await collection.UpsertConceptsAsync([new ConceptInput("a", [1, 0, 0, 0, 0, 0, 0, 0])])).AssertOk();
        await Db.Database.CloseAsync(checkpoint: true);

        ArgumentException error = Assert.Throws<ArgumentException>(() => AssocDatabase.Open(Db.Options with { StateIndexBytes = indexBytes }));
        Assert.StartsWith($"StateIndexBytes is {indexBytes}; it must be a power of two from 512 to 68719476736", error.Message, StringComparison.Ordinal);

        // The smallest size FASTER takes opens the collection, which keeps the index it was checkpointed with.
        await using AssocDatabase smallest = AssocDatabase.Open(Db.Options with { StateIndexBytes = 512 });
        smallest.GetCollection("test").AssertOk().GetConcept("a").AssertOk();
    }

    [Fact]
    public async Task A_second_process_cannot_open_a_folder_in_use()
    {
        Db.Create();
        Assert.Throws<IOException>(() => AssocDatabase.Open(Db.Options));
        await Task.CompletedTask;
    }
}
