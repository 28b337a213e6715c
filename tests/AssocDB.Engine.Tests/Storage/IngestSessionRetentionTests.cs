using System.Text;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// Guards the bound on ingest marks: a collection keeps the marks of its IngestSessionsKept most
// recently written sessions, through restarts (log replay and checkpoint alike), so a recent session
// still resumes while the marks of many sessions do not pile up.
public sealed class IngestSessionRetentionTests : IAsyncLifetime
{
    private readonly TestDatabase _db = new(ingestSessionsKept: 3);

    public Task InitializeAsync()
    {
        _db.Create(dimension: 4);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private async Task IngestAsync(string session, long sequence) =>
        (await _db.Get().IngestAsync(new IngestBatch(session, sequence, [], [new FactInput($"{session}-{sequence}", "r", "t")]))).AssertOk();

    private long[] Progress(params string[] sessions) => ProgressIn(_db, sessions);

    // Every session's mark was kept for good (in memory and in the state store): a long-lived
    // collection fed by many short sessions grew by one mark per session ever run.
    [Fact]
    public async Task A_new_session_past_the_limit_replaces_the_least_recently_written_mark()
    {
        await IngestAsync("a", 0);
        await IngestAsync("b", 0);
        await IngestAsync("c", 0);
        await IngestAsync("a", 1);
        await IngestAsync("d", 0);
        Assert.Equal([1, -1, 0, 0], Progress("a", "b", "c", "d"));

        // Replayed from the log, the same marks, and the same order of recency.
        await _db.ReopenAsync(checkpointOnClose: false);
        Assert.Equal([1, -1, 0, 0], Progress("a", "b", "c", "d"));
        await IngestAsync("e", 0);
        await IngestAsync("a", 2);
        Assert.Equal([2, -1, 0, 0], Progress("a", "c", "d", "e"));

        // Read back from the checkpoint: the recency order is in the stored marks, not in their ids
        // (a holds the lowest id and is the most recent).
        await _db.ReopenAsync();
        await IngestAsync("f", 0);
        Assert.Equal([2, -1, 0, 0], Progress("a", "d", "e", "f"));
        Assert.Equal(3, _db.Get().IngestSessionCount.AssertOk());

        // A forgotten session reads as new: its batch is applied again (its facts already there).
        IngestResult again = (await _db.Get().IngestAsync(new IngestBatch("b", 0, [], [new FactInput("b-0", "r", "t")]))).AssertOk();
        Assert.False(again.AlreadyApplied);
        Assert.Equal(new WriteSummary(0, 1), again.Facts);
        Assert.Equal(0, _db.Get().LastIngestedSequence("b"));
    }

    [Fact]
    public async Task Many_sessions_keep_only_the_limit_of_marks_and_a_recent_session_resumes()
    {
        for (int session = 0; session < 40; session++)
        {
            await IngestAsync($"s{session}", 0);
            await IngestAsync($"s{session}", 5);
        }

        await _db.ReopenAsync();
        Assert.Equal(3, _db.Get().IngestSessionCount.AssertOk());
        Assert.Equal([-1, 5, 5, 5], Progress("s36", "s37", "s38", "s39"));
        IngestResult resent = (await _db.Get().IngestAsync(new IngestBatch("s39", 5, [], [new FactInput("never", "r", "stored")]))).AssertOk();
        Assert.True(resent.AlreadyApplied);
        Assert.Equal(80, _db.Get().Describe().AssertOk().FactCount);
    }

    // Lowering IngestSessionsKept bounded only what new sessions added: a collection holding more
    // marks than the new limit kept them all for good (10 marks under a limit of 3 stayed 10).
    [Fact]
    public async Task Lowering_the_limit_drops_the_oldest_marks_at_the_next_new_session_for_good()
    {
        await _db.ReopenAsync(ingestSessionsKept: 10);
        string[] old = [.. Enumerable.Range(0, 10).Select(session => $"s{session}")];
        foreach (string session in old)
        {
            await IngestAsync(session, 0);
        }

        await IngestAsync("s2", 1);
        await _db.ReopenAsync(ingestSessionsKept: 3);
        Assert.Equal(10, _db.Get().IngestSessionCount.AssertOk());

        // The new session's batch leaves the limit's number of marks: the two most recent and its own.
        await IngestAsync("new", 0);
        AssertKept();

        // Replayed from the log, and read back from the checkpoint, with the limit raised again:
        // the dropped marks stay dropped, in memory and in the state store.
        await _db.ReopenAsync(checkpointOnClose: false, ingestSessionsKept: 10);
        AssertKept();
        await _db.ReopenAsync(ingestSessionsKept: 10);
        AssertKept();

        // The freed ids are taken again without displacing a kept mark.
        string[] later = [.. Enumerable.Range(0, 7).Select(session => $"later{session}")];
        foreach (string session in later)
        {
            await IngestAsync(session, 4);
        }

        await _db.ReopenAsync(checkpointOnClose: false);
        Assert.Equal(10, _db.Get().IngestSessionCount.AssertOk());
        Assert.Equal([1, 0, 0, .. later.Select(_ => 4L)], Progress(["s2", "s9", "new", .. later]));
        await _db.ReopenAsync();
        Assert.Equal([1, 0, 0, .. later.Select(_ => 4L)], Progress(["s2", "s9", "new", .. later]));

        void AssertKept()
        {
            Assert.Equal(3, _db.Get().IngestSessionCount.AssertOk());
            Assert.Equal([1, 0, 0], Progress("s2", "s9", "new"));
            Assert.All(old.Except(["s2", "s9"]), session => Assert.Equal(-1, _db.Get().LastIngestedSequence(session).AssertOk()));
        }
    }

    // Versions before marks could be deleted kept a placeholder (id -1, no session) for each id
    // missing below the highest, and their rewrite of the store from memory stored it as a record
    // when they read a store whose marks this version had deleted (a downgrade after the limit was
    // lowered). This version took that record for a mark, and the collection did not open
    // (ArgumentOutOfRangeException from the mark's id).
    [Fact]
    public async Task A_placeholder_mark_stored_by_an_earlier_version_is_not_taken_for_a_session()
    {
        await IngestAsync("a", 0);
        await IngestAsync("b", 4);
        string state = Path.Combine(_db.Get().Directory, "state");
        await _db.Database.CloseAsync(checkpoint: true);
        using (var store = new StateStore(state, _db.Options.StateIndexBytes, _db.Options.StateMemoryBytes, _db.Options.StateSegmentBytes))
        {
            using (StateStore.Writer writer = store.BeginWrites())
            {
                writer.Put(RecordKind.IngestMark, RecordCodec.EncodeStored(new IngestMark(-1, "", -1, long.MinValue)));
            }

            Assert.Null(await store.CheckpointAsync(store.RecoveredLogAddress, store.RecoveredLogSequence!.Value, store.RecoveredSupersededBytes, TimeSpan.FromMinutes(1)));
        }

        await _db.ReopenAsync();
        Assert.Equal(2, _db.Get().IngestSessionCount.AssertOk());
        Assert.Equal([0, 4, -1], Progress("a", "b", ""));
        await IngestAsync("c", 0);
        await IngestAsync("d", 0);
        Assert.Equal([-1, 4, 0, 0], Progress("a", "b", "c", "d"));
    }

    // A rewrite of the store from memory, after a compaction met a damaged record, stores the
    // marks left after some were deleted, under their ids, with their progress and write order.
    [Fact]
    public async Task A_store_rewritten_from_memory_after_marks_were_deleted_keeps_the_marks_as_they_were()
    {
        // 64 KiB pages and files and 256 KiB of memory: the first concepts' pages are read back
        // from their files by the compaction.
        await using var small = new TestDatabase(stateMemoryBytes: 1L << 18, stateSegmentBytes: 1L << 16, ingestSessionsKept: 10);
        Collection collection = small.Create(dimension: 4);
        string[] old = [.. Enumerable.Range(0, 10).Select(session => $"s{session}")];
        foreach (string session in old)
        {
            (await collection.IngestAsync(new IngestBatch(session, 0, [], [new FactInput(session, "r", "t")]))).AssertOk();
        }

        (await collection.IngestAsync(new IngestBatch("s2", 1, [], []))).AssertOk();
        await small.ReopenAsync(ingestSessionsKept: 3);
        collection = small.Get();
        (await collection.IngestAsync(new IngestBatch("new", 0, [], []))).AssertOk();
        for (int version = 0; version < 2; version++)
        {
            for (int start = 0; start < 5000; start += 500)
            {
                (await collection.UpsertConceptsAsync([.. Enumerable.Range(start, 500).Select(c => new ConceptInput($"c{c}", [c, version, 1, 1]))])).AssertOk();
            }

            if (version == 0)
            {
                (await collection.CheckpointAsync()).AssertOk();
            }
        }

        string file = Path.Combine(collection.Directory, "state", "hlog.log.0");
        (_, long value) = StateLogBytes.Find(file, RecordKind.Concept, collection.GetConcept("c5").AssertOk().Id);
        StateLogBytes.Xor(file, value + 12, 0x01);
        (await collection.CheckpointAsync()).AssertOk();
        Assert.False(File.Exists(file), "the store was not rewritten from memory");

        await small.ReopenAsync(checkpointOnClose: false, ingestSessionsKept: 10);
        Assert.Equal(3, small.Get().IngestSessionCount.AssertOk());
        Assert.Equal([1, 0, 0, .. old.Except(["s2", "s9"]).Select(_ => -1L)], ProgressIn(small, ["s2", "s9", "new", .. old.Except(["s2", "s9"])]));
        string[] later = [.. Enumerable.Range(0, 7).Select(session => $"later{session}")];
        foreach (string session in later)
        {
            (await small.Get().IngestAsync(new IngestBatch(session, 4, [], []))).AssertOk();
        }

        await small.ReopenAsync();
        Assert.Equal(10, small.Get().IngestSessionCount.AssertOk());
        Assert.Equal([1, 0, 0, .. later.Select(_ => 4L)], ProgressIn(small, ["s2", "s9", "new", .. later]));
    }

    private static long[] ProgressIn(TestDatabase database, params string[] sessions) =>
        [.. sessions.Select(session => database.Get().LastIngestedSequence(session).AssertOk())];

    // Deleting the oldest marks left their ids free below the highest, and earlier versions take a
    // missing id for a mark: those with the limit kept a placeholder for it, which their rewrite
    // of the store from memory stored, and the collection's open then failed (see above); those
    // before the limit gave a new session the number of marks as its id, a kept session's, whose
    // mark it replaced. Kept marks above the limit now move down to the freed ids, with their
    // write order, so that a later new session still replaces the least recently written.
    [Fact]
    public async Task Dropping_marks_moves_the_kept_ones_to_the_lowest_ids_in_their_order()
    {
        await _db.ReopenAsync(ingestSessionsKept: 10);
        foreach (string session in Enumerable.Range(0, 10).Select(session => $"s{session}"))
        {
            await IngestAsync(session, 0);
        }

        await IngestAsync("s2", 1);
        await _db.ReopenAsync(ingestSessionsKept: 3);
        await IngestAsync("new", 0);

        // Replayed from the log, then checkpointed: s9 (id 9) sits at the lowest freed id.
        await _db.ReopenAsync(checkpointOnClose: false);
        string state = Path.Combine(_db.Get().Directory, "state");
        await _db.Database.CloseAsync(checkpoint: true);
        var stored = new List<IngestMark>();
        using (var store = new StateStore(state, _db.Options.StateIndexBytes, _db.Options.StateMemoryBytes, _db.Options.StateSegmentBytes))
        {
            store.ForEach((kind, _, bytes) =>
            {
                if (kind == RecordKind.IngestMark)
                {
                    stored.Add(RecordCodec.DecodeIngestMark(bytes));
                }
            });
        }

        Assert.Equal([(0, "new"), (1, "s9"), (2, "s2")], stored.OrderBy(mark => mark.Id).Select(mark => (mark.Id, mark.Session)));

        // s9 was written before s2: the next new session replaces it.
        await _db.ReopenAsync();
        await IngestAsync("next", 0);
        Assert.Equal([1, -1, 0, 0], Progress("s2", "s9", "new", "next"));
    }

    // Marks stored by earlier versions hold no write order: they read as the oldest, and such a
    // record (and a format-1 log entry's mark) still decodes.
    [Fact]
    public void A_mark_stored_without_its_write_order_reads_as_written_at_zero()
    {
        var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            RecordCodec.Write(writer, new IngestMark(7, "old", 41, Written: 99));
        }

        Assert.Equal(new IngestMark(7, "old", 41, 0), RecordCodec.DecodeIngestMark(stream.ToArray()));

        stream.SetLength(0);
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            RecordCodec.WriteStored(writer, new IngestMark(7, "new", 41, Written: 99));
        }

        Assert.Equal(new IngestMark(7, "new", 41, 99), RecordCodec.DecodeIngestMark(stream.ToArray()));
    }
}
