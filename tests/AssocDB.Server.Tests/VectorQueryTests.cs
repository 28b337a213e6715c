using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests;

/// <summary>A server whose search batcher waits up to 20 ms for more calls after the first of a
/// batch, so concurrent calls coalesce even when the engine is fast; with metrics on.</summary>
public sealed class BatchingServerFixture : ServerFixture
{
    protected override string[] Args => ["--metrics-port", "0", "--AssocDB:SearchBatching:MaxDelayMicroseconds=20000"];
}

/// <summary>
/// Vector queries over the wire: search (raw vector, concept ± relation, batches), relate and
/// recall answer from the engine; bad dimensions and NaN are refused naming the field; and
/// concurrent search calls are coalesced into fewer engine searches with the same answers.
/// </summary>
public sealed class VectorQueryTests(BatchingServerFixture fixture) : IClassFixture<BatchingServerFixture>, IAsyncLifetime
{
    private static readonly string[] Concepts = ["paris", "france", "rome", "italy"];
    private readonly AssocDbClient _client = fixture.Client;
    private readonly string _c = ServerFixture.NewCollection("vec");

    public async Task InitializeAsync()
    {
        await _client.CreateCollectionAsync(_c, 4);
        await _client.UpsertConceptsAsync(_c,
        [
            Concept("paris", [1f, 0f, 0f, 0f]), Concept("france", [1f, 1f, 0f, 0f]),
            Concept("rome", [0f, 0f, 1f, 0f]), Concept("italy", [0f, 1f, 1f, 0f]),
        ]);
        await _client.DefineRelationAsync(_c, "capital_of", vector: [0f, 1f, 0f, 0f]);
        await _client.AddFactsAsync(_c,
        [
            new FactInput { Head = "paris", Relation = "capital_of", Tail = "france" },
            new FactInput { Head = "rome", Relation = "capital_of", Tail = "italy" },
        ]);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Search_answers_vectors_concepts_and_relation_offsets_in_one_batch()
    {
        IReadOnlyList<IReadOnlyList<SearchHit>> results = await _client.SearchAsync(_c,
        [
            Queries.Vector([0.9f, 0.05f, 0f, 0f]),
            Queries.Concept("paris"),
            Queries.Concept("paris", plus: ["capital_of"]),
            Queries.Concept("italy", minus: ["capital_of"]),
        ], k: 1);
        Assert.Equal(4, results.Count);
        Assert.Equal("paris", results[0][0].Concept);
        Assert.NotEqual("paris", results[1][0].Concept);
        Assert.Equal("france", results[2][0].Concept);
        Assert.Equal("rome", results[3][0].Concept);
    }

    [Fact]
    public async Task Relate_and_recall_answer_from_graph_and_vectors()
    {
        RelateResponse relate = await _client.RelateAsync(_c, "paris", "france");
        Assert.Contains(relate.Graph, g => g.Relation == "capital_of" && g.Kind == AnswerKind.Stored);
        Assert.Equal("capital_of", relate.VectorReading[0].Relation);

        RecallResponse recall = await _client.RecallAsync(_c, "capital_of", "paris", RecallDirection.Forward, k: 1);
        Assert.Equal("france", recall.Nearest[0].Concept);
        Assert.Equal(4, recall.Vector.Values.Count);
    }

    [Fact]
    public async Task Wrong_dimension_and_NaN_in_a_query_are_invalid_naming_the_query()
    {
        var dimension = await Assert.ThrowsAsync<AssocDbException>(() => _client.SearchAsync(_c, Queries.Vector([1f, 2f])));
        Assert.Equal(StatusCode.InvalidArgument, dimension.StatusCode);
        Assert.StartsWith("queries[0]", dimension.Field, StringComparison.Ordinal);
        var nan = await Assert.ThrowsAsync<AssocDbException>(() => _client.SearchAsync(_c, Queries.Vector([1f, float.NaN, 0f, 0f])));
        Assert.Equal(StatusCode.InvalidArgument, nan.StatusCode);
        Assert.StartsWith("queries[0]", nan.Field, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_dimension_and_NaN_in_a_recall_vector_are_invalid_naming_the_vector()
    {
        var dimension = await Assert.ThrowsAsync<AssocDbException>(() => _client.RecallAsync(_c, "capital_of", [1f, 2f]));
        Assert.Equal((StatusCode.InvalidArgument, "vector"), (dimension.StatusCode, dimension.Field));
        var nan = await Assert.ThrowsAsync<AssocDbException>(() => _client.RecallAsync(_c, "capital_of", [1f, float.NaN, 0f, 0f]));
        Assert.Equal((StatusCode.InvalidArgument, "vector[1]"), (nan.StatusCode, nan.Field));
    }

    [Fact]
    public async Task Concurrent_searches_are_coalesced_into_batches_with_unchanged_answers()
    {
        Dictionary<string, string> alone = await NearestAloneAsync();
        // The batch-size histogram counts every engine search and sums its queries; the difference
        // across this test's calls is what they cost (tests of a class run one at a time).
        (double queriesBefore, double searchesBefore) = await BatchTotalsAsync();

        IReadOnlyList<SearchHit>[] results = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => _client.SearchAsync(_c, Queries.Concept(Concepts[i % 4]), 1 + (i % 2))));

        (double queriesAfter, double searchesAfter) = await BatchTotalsAsync();
        Assert.Equal(64, queriesAfter - queriesBefore);
        double meanBatch = (queriesAfter - queriesBefore) / (searchesAfter - searchesBefore);
        Assert.True(meanBatch > 1, $"64 concurrent calls ran as {searchesAfter - searchesBefore} engine searches (mean batch {meanBatch:F2})");
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(1 + (i % 2), results[i].Count);
            Assert.Equal(alone[Concepts[i % 4]], results[i][0].Concept);
        }
    }

    [Fact]
    public async Task Bad_call_among_concurrent_searches_fails_alone()
    {
        Dictionary<string, string> alone = await NearestAloneAsync();
        (double queriesBefore, _) = await BatchTotalsAsync();
        Task<ReplyList<SearchHit>>[] calls = [.. Enumerable.Range(0, 16).Select(i => _client.SearchAsync(_c, Queries.Concept(Concepts[i % 4]), 1))];
        Task<ReplyList<SearchHit>> bad = _client.SearchAsync(_c, Queries.Concept("nobody"));
        ReplyList<SearchHit>[] results = await Task.WhenAll(calls);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(alone[Concepts[i % 4]], Assert.Single(results[i]).Concept);
        }

        var e = await Assert.ThrowsAsync<AssocDbException>(() => bad);
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        // Each query is counted once in the batch metric, whichever search answered it (a combined
        // search that failed was counted as well as the calls searched again alone).
        (double queriesAfter, _) = await BatchTotalsAsync();
        Assert.Equal(17, queriesAfter - queriesBefore);
    }

    // Calls are coalesced only with calls that filter on the same metadata. Keys and values may hold
    // any character; {"a": "1", "b": "2"} and {"a": "1\0b\02"} once made the same grouping key, and
    // a coalesced batch searched every call with the first call's filter.
    [Fact]
    public async Task Concurrent_searches_with_different_filters_each_get_their_own()
    {
        string c = ServerFixture.NewCollection("filters");
        await _client.CreateCollectionAsync(c, 4);
        var split = Concept("split", [1f, 0f, 0f, 0f]);
        split.Metadata.Add(new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" });
        var joined = Concept("joined", [1f, 0f, 0f, 0f]);
        joined.Metadata.Add("a", "1\0b\02");
        await _client.UpsertConceptsAsync(c, [split, joined]);
        Dictionary<string, string>[] filters = [new() { ["a"] = "1", ["b"] = "2" }, new() { ["a"] = "1\0b\02" }];
        string[] expected = ["split", "joined"];

        Task<ReplyList<IReadOnlyList<SearchHit>>>[] calls = [.. Enumerable.Range(0, 32)
            .Select(i => _client.SearchAsync(c, [Queries.Vector([1f, 0f, 0f, 0f])], 10, metadataFilter: filters[i % 2]))];
        ReplyList<IReadOnlyList<SearchHit>>[] results = await Task.WhenAll(calls);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(expected[i % 2], Assert.Single(results[i][0]).Concept);
        }
    }

    /// <summary>Each concept's nearest other concept, asked one call at a time.</summary>
    private async Task<Dictionary<string, string>> NearestAloneAsync()
    {
        var alone = new Dictionary<string, string>();
        foreach (string concept in Concepts)
        {
            alone[concept] = (await _client.SearchAsync(_c, Queries.Concept(concept), 2))[0].Concept;
        }

        return alone;
    }

    /// <summary>Queries searched and engine searches run so far.</summary>
    private async Task<(double Queries, double Searches)> BatchTotalsAsync() =>
        (await fixture.Server.MetricAsync("assocdb_search_batch_queries_sum"), await fixture.Server.MetricAsync("assocdb_search_batch_queries_count"));

    private static ConceptInput Concept(string name, float[] vector) => new() { Name = name, Vector = Vectors.Of(vector) };
}
