using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Vectors;

// A search of many queries runs a slice at a time under the collection's read lock. Run whole, a
// timed-out 10,000-query search held the lock for its full 13 s: every write waited behind it, and
// new reads behind the waiting write.
public sealed class SearchSliceTests : DatabaseTests
{
    private const int Dimension = 64;
    private Collection _collection = null!;

    public override async Task InitializeAsync()
    {
        _collection = Db.Create("v", Dimension, Metric.Dot);
        var random = new Random(11);
        for (int start = 0; start < 40_000; start += 5_000)
        {
            ConceptInput[] concepts = [.. Enumerable.Range(start, 5_000).Select(i => new ConceptInput($"c{i}", RandomVector(random)))];
            (await _collection.UpsertConceptsAsync(concepts)).AssertOk();
        }
    }

    private static float[] RandomVector(Random random) => [.. Enumerable.Range(0, Dimension).Select(_ => (float)(random.NextDouble() - 0.5))];

    private static SearchQuery[] ByConcept(int count, int stride) =>
        [.. Enumerable.Range(0, count).Select(i => new SearchQuery(Concept: $"c{i * stride}"))];

    [Fact]
    public void A_search_over_several_slices_answers_each_query_as_alone()
    {
        SearchQuery[] queries = ByConcept(2 * Collection.QueriesPerSlice + 3, 7);
        var options = new SearchOptions(K: 5);
        IReadOnlyList<IReadOnlyList<SearchHit>> together = _collection.Search(queries, options).AssertOk();

        Assert.Equal(queries.Length, together.Count);
        foreach (int i in new[] { 0, Collection.QueriesPerSlice - 1, Collection.QueriesPerSlice, queries.Length - 1 })
        {
            IReadOnlyList<SearchHit> alone = _collection.Search([queries[i]], options).AssertOk()[0];
            Assert.Equal(alone.Select(hit => (hit.Concept, hit.Score)), together[i].Select(hit => (hit.Concept, hit.Score)));
            Assert.DoesNotContain(queries[i].Concept, together[i].Select(hit => hit.Concept));
        }
    }

    [Fact]
    public void A_bad_query_in_a_later_slice_is_named_by_its_place_in_the_call()
    {
        SearchQuery[] queries = [.. ByConcept(Collection.QueriesPerSlice + 10, 1)];
        queries[Collection.QueriesPerSlice + 4] = new SearchQuery(Concept: "missing");
        _collection.Search(queries, new SearchOptions(K: 1)).AssertError(ErrorCode.NotFound, $"queries[{Collection.QueriesPerSlice + 4}].concept");
    }

    [Fact]
    public async Task A_long_search_lets_writes_through_between_slices_and_stops_when_cancelled()
    {
        // 400 slices of 256 queries over 40,000 rows: seconds of work on this machine.
        SearchQuery[] queries = [.. Enumerable.Range(0, 400 * Collection.QueriesPerSlice).Select(i => new SearchQuery(Concept: $"c{i % 40_000}"))];
        using var cancel = new CancellationTokenSource();
        Task search = DedicatedThread.Run(() => _collection.Search(queries, new SearchOptions(K: 10), cancel.Token));
        await Task.Delay(200);

        (await _collection.UpsertConceptsAsync([new ConceptInput("written-meanwhile", new float[Dimension])])).AssertOk();
        Assert.False(search.IsCompleted, "the search ended before the write went through: it is too short to show anything");

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => search.WaitAsync(TimeSpan.FromMinutes(1)));
    }
}
