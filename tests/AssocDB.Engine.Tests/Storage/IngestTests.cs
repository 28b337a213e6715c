using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// Guards the bulk path's contract: bad items are skipped and reported while the rest lands, a
// batch and its session mark are durable together, and resending a batch after a restart is a no-op.
public sealed class IngestTests : DatabaseTests
{
    private Collection _collection = null!;

    public override Task InitializeAsync()
    {
        _collection = Db.Create(dimension: 4);
        return Task.CompletedTask;
    }

    private static IngestBatch Batch(long sequence, params FactInput[] facts) => new("load-1", sequence, [], facts);

    [Fact]
    public async Task Invalid_items_are_reported_and_the_rest_is_stored()
    {
        IngestResult result = (await _collection.IngestAsync(new IngestBatch(
            "load-1",
            0,
            [new ConceptInput("v", [1, 2, 3, 4]), new ConceptInput("w", [1, 2])],
            [new FactInput("a", "r", "b"), new FactInput("a", "r", "c", float.NaN), new FactInput("v", "r", "a"), new FactInput("", "r", "x")]))).AssertOk();

        Assert.False(result.AlreadyApplied);
        Assert.Equal(["concepts[1].vector", "facts[1].weight", "facts[3].head"], result.Rejected.Select(rejection => rejection.Field));
        Assert.Equal(new WriteSummary(1, 0), result.Concepts);
        Assert.Equal(new WriteSummary(2, 0, 2, 1), result.Facts);
        Assert.Equal([1f, 2, 3, 4], _collection.GetConcept("v").AssertOk().Vector);
        Assert.Equal(2, _collection.Describe().AssertOk().FactCount);
        Assert.Equal(0, _collection.LastIngestedSequence("load-1").AssertOk());
    }

    [Fact]
    public async Task A_resent_batch_after_a_restart_is_answered_as_already_applied()
    {
        (await _collection.IngestAsync(Batch(0, new FactInput("a", "r", "b")))).AssertOk();
        (await _collection.IngestAsync(Batch(1, new FactInput("b", "r", "c")))).AssertOk();
        await Db.ReopenAsync(checkpointOnClose: false);
        _collection = Db.Get();

        Assert.Equal(1, _collection.LastIngestedSequence("load-1").AssertOk());
        Assert.Equal(-1, _collection.LastIngestedSequence("another").AssertOk());
        IngestResult resent = (await _collection.IngestAsync(Batch(1, new FactInput("b", "r", "c"), new FactInput("never", "r", "stored")))).AssertOk();
        Assert.True(resent.AlreadyApplied);
        _collection.GetConcept("never").AssertError(ErrorCode.NotFound, "name");

        (await _collection.IngestAsync(Batch(2, new FactInput("c", "r", "d")))).AssertOk();
        await Db.ReopenAsync();
        Assert.Equal(3, Db.Get().Describe().AssertOk().FactCount);
        Assert.Equal(2, Db.Get().LastIngestedSequence("load-1").AssertOk());
    }

    [Fact]
    public async Task Concepts_and_facts_of_one_batch_share_new_ids_without_collision()
    {
        (await _collection.IngestAsync(new IngestBatch("s", 0, [new ConceptInput("x"), new ConceptInput("y")], [new FactInput("p", "r", "q"), new FactInput("x", "r", "p")]))).AssertOk();

        int[] ids = new[] { "x", "y", "p", "q" }.Select(name => _collection.GetConcept(name).AssertOk().Id).ToArray();
        Assert.Equal(ids.Length, ids.Distinct().Count());
        Assert.Equal("p", Assert.Single(_collection.Related("x", "r").AssertOk()).Concept);
    }

    [Fact]
    public async Task A_bad_session_or_sequence_refuses_the_whole_batch()
    {
        (await _collection.IngestAsync(new IngestBatch("", 0, [], [new FactInput("a", "r", "b")]))).AssertError(ErrorCode.InvalidArgument, "session");
        (await _collection.IngestAsync(Batch(-1, new FactInput("a", "r", "b")))).AssertError(ErrorCode.InvalidArgument, "sequence");
        Assert.Equal(0, _collection.Describe().AssertOk().FactCount);
    }

    // Metadata and payloads over 1 MiB would make records too large for a state-store page: a write
    // is refused naming the item's field, and an ingest batch skips just that item.
    [Fact]
    public async Task Metadata_and_payloads_over_a_mebibyte_are_refused_and_skipped_when_ingesting()
    {
        var huge = new Dictionary<string, string> { ["blob"] = new string('é', (1 << 19) + 1) };
        (await _collection.UpsertConceptsAsync([new ConceptInput("ok"), new ConceptInput("big", Metadata: huge)]))
            .AssertError(ErrorCode.InvalidArgument, "concepts[1].metadata");
        (await _collection.AddFactsAsync([new FactInput("a", "r", "b", Payload: huge)])).AssertError(ErrorCode.InvalidArgument, "facts[0].payload");

        IngestResult result = (await _collection.IngestAsync(new IngestBatch(
            "limits", 0, [new ConceptInput("big", Metadata: huge), new ConceptInput("small")], [new FactInput("a", "r", "b", Payload: huge), new FactInput("a", "r", "c")]))).AssertOk();
        Assert.Equal(["concepts[0].metadata", "facts[0].payload"], result.Rejected.Select(r => r.Field));
        Assert.True(_collection.GetConcept("small").IsOk);
        Assert.False(_collection.GetConcept("big").IsOk);
        Assert.Equal("c", Assert.Single(_collection.Neighbors("a").AssertOk()).Other);
    }
}
