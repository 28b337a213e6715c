using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Vectors;

// Guards the collection's vector operations end to end: c ± r search resolves names and relation
// vectors, relate combines proofs with the vector reading, recall reads a relation both ways, and
// every bad query is refused naming its field.
public sealed class CollectionVectorTests : DatabaseTests
{
    private const int Dimension = 16;
    private Collection _collection = null!;
    private float[] _capitalOf = null!;

    public override async Task InitializeAsync()
    {
        _collection = Db.Create("geo", Dimension, Metric.L2);
        var random = new Random(5);
        float[] Random() => Enumerable.Range(0, Dimension).Select(_ => (float)random.NextDouble()).ToArray();
        _capitalOf = Random();
        var concepts = new List<ConceptInput>();
        var facts = new List<FactInput>();
        for (int i = 0; i < 50; i++)
        {
            float[] city = Random();
            concepts.Add(new ConceptInput($"city{i}", city, new Dictionary<string, string> { ["kind"] = "city" }));
            concepts.Add(new ConceptInput($"country{i}", city.Zip(_capitalOf, (c, r) => c + r).ToArray(), new Dictionary<string, string> { ["kind"] = "country" }));
            facts.Add(new FactInput($"city{i}", "capital_of", $"country{i}"));
        }

        (await _collection.UpsertConceptsAsync(concepts)).AssertOk();
        (await _collection.DefineRelationAsync(new RelationSpec("capital_of", _capitalOf))).AssertOk();
        (await _collection.DefineRelationAsync(new RelationSpec("unlearned"))).AssertOk();
        (await _collection.AddFactsAsync(facts)).AssertOk();
    }

    // l2 scores an exact match −‖w − q‖² = −0, which the CLI and JSON printed as "-0".
    [Fact]
    public void An_exact_l2_match_scores_zero_not_negative_zero()
    {
        float[] city = _collection.GetConcept("city7").AssertOk().Vector;

        SearchHit hit = _collection.Search([new SearchQuery(Vector: city)], new SearchOptions(K: 1)).AssertOk()[0][0];

        Assert.Equal(("city7", false), (hit.Concept, float.IsNegative(hit.Score)));
    }

    // A row and its opposite at the norm bound lie (2‖w‖)² apart, four times the bound: at a
    // quarter of float32's range that summed to +∞, and the row scored −∞ (no better than a free
    // row, and the device kernels dropped it).
    [Fact]
    public async Task A_row_and_its_opposite_at_the_norm_bound_score_a_finite_distance()
    {
        Collection far = Db.Create("far", dimension: 3, metric: Metric.L2);
        var random = new Random(7);
        for (int trial = 0; trial < 300; trial++)
        {
            float[] row = [.. Enumerable.Range(0, 3).Select(_ => (float)random.NextDouble())];
            double scale = Math.Sqrt(Validation.MaxSquaredNorm / row.Sum(x => (double)x * x));
            row = [.. row.Select(x => (float)(x * scale))];
            while (Validation.Vector(row, 3, "row") is not null)
            {
                row = [.. row.Select(MathF.BitDecrement)];
            }

            (await far.UpsertConceptsAsync([new ConceptInput("w", row)])).AssertOk();
            SearchHit hit = far.Search([new SearchQuery(Vector: [.. row.Select(x => -x)])], new SearchOptions(K: 1)).AssertOk()[0][0];
            Assert.True(float.IsFinite(hit.Score), $"trial {trial}: w = ({string.Join(", ", row)}) scored {hit.Score} against −w");
        }
    }

    // The caller of c + r sends no vector, so "scale it down" left them guessing which one: the
    // error names the concept and the relations as the parts whose sum is too large.
    [Fact]
    public async Task A_concept_plus_relation_past_the_norm_bound_names_the_parts()
    {
        Collection wide = Db.Create("wide", dimension: 2, metric: Metric.Dot);
        float edge = (float)Math.Sqrt(Validation.MaxSquaredNorm) * 0.9f;
        (await wide.UpsertConceptsAsync([new ConceptInput("big", [edge, 0])])).AssertOk();
        (await wide.DefineRelationAsync(new RelationSpec("more", [edge, 0]))).AssertOk();

        EngineError error = wide.Search([new SearchQuery(Concept: "big", Plus: ["more"])], new SearchOptions(K: 1)).AssertError(ErrorCode.InvalidArgument, "queries[0].plus");

        Assert.Contains("the query's concept with these relations' vectors sums to a squared norm", error.Message, StringComparison.Ordinal);
    }

    // β·s overflowed float32 for a large β: under dot a score of 6 at β = 1e38 is +∞, and the softmax
    // gave NaN (reported as a bad query component). The softmax is taken of β·(s − max s), so a huge
    // β reads the best-matching fact alone.
    [Fact]
    public async Task Recall_with_a_huge_beta_reads_the_best_matching_fact()
    {
        Collection dot = Db.Create("dotted", dimension: 2, metric: Metric.Dot);
        (await dot.UpsertConceptsAsync([new ConceptInput("a", [3, 0]), new ConceptInput("b", [0, 3]), new ConceptInput("ta", [1, 0.5f]), new ConceptInput("tb", [-1, 2])])).AssertOk();
        (await dot.AddFactsAsync([new FactInput("a", "r", "ta"), new FactInput("b", "r", "tb")])).AssertOk();

        RecallResult result = dot.Recall(new RecallQuery("r", Vector: [2, 0], Direction: RecallDirection.Forward, Beta: 1e38f, K: 1)).AssertOk();
        Assert.Equal([1, 0.5f], result.Vector);
    }

    // Under cosine a row is scaled by 1/‖w‖, which overflows float32 below ‖w‖ ≈ 2.9e-39: such rows
    // are refused. A query that small is normalized by division and still finds its neighbours
    // (it became ∞ and NaN, and found nothing).
    [Fact]
    public async Task Vectors_near_zero_under_cosine_are_refused_as_rows_and_answered_as_queries()
    {
        Collection cosine = Db.Create("tiny", dimension: 4, metric: Metric.Cosine);
        (await cosine.UpsertConceptsAsync([new ConceptInput("dust", [1e-39f, 0, 0, 0])])).AssertError(ErrorCode.InvalidArgument, "concepts[0].vector");
        (await cosine.UpsertConceptsAsync([new ConceptInput("x", [1, 0, 0, 0]), new ConceptInput("y", [0, 1, 0, 0]), new ConceptInput("zero", [0, 0, 0, 0])])).AssertOk();

        IReadOnlyList<SearchHit> hits = cosine.Search([new SearchQuery(Vector: [2e-39f, 0, 0, 0])], new SearchOptions(K: 3)).AssertOk()[0];
        Assert.Equal(["x", "y", "zero"], hits.Select(hit => hit.Concept));
        Assert.Equal(1f, hits[0].Score, 5);
    }

    [Fact]
    public void Concept_plus_and_minus_a_relation_find_the_other_end()
    {
        IReadOnlyList<IReadOnlyList<SearchHit>> hits = _collection.Search(
            [new SearchQuery(Concept: "city7", Plus: ["capital_of"]), new SearchQuery(Concept: "country7", Minus: ["capital_of"])],
            new SearchOptions(K: 3)).AssertOk();

        Assert.Equal("country7", hits[0][0].Concept);
        Assert.Equal("city7", hits[1][0].Concept);
        Assert.Equal(0f, hits[0][0].Score, 3);
        Assert.DoesNotContain(hits[0], hit => hit.Concept == "city7");
    }

    [Fact]
    public void Metadata_filters_and_self_exclusion_apply()
    {
        IReadOnlyList<SearchHit> cities = _collection.Search([new SearchQuery(Concept: "city3")],
            new SearchOptions(K: 100, MetadataFilter: new Dictionary<string, string> { ["kind"] = "city" })).AssertOk()[0];
        Assert.Equal(49, cities.Count);
        Assert.All(cities, hit => Assert.StartsWith("city", hit.Concept));

        IReadOnlyList<SearchHit> withSelf = _collection.Search([new SearchQuery(Concept: "city3")], new SearchOptions(K: 1, ExcludeQueryConcepts: false)).AssertOk()[0];
        Assert.Equal("city3", Assert.Single(withSelf).Concept);
    }

    [Fact]
    public void Relate_reports_the_stored_edge_and_reads_the_difference_as_the_relation()
    {
        RelateResult result = _collection.Relate("city4", "country4").AssertOk();
        RelatedRelation stored = Assert.Single(result.Graph);
        Assert.Equal(("capital_of", AnswerKind.Stored), (stored.Relation, stored.Kind));
        Assert.Equal("capital_of", result.VectorReading[0].Relation);
        Assert.Equal(1f, result.VectorReading[0].Score, 4);
    }

    [Fact]
    public void Recall_reads_the_relation_forward_and_in_reverse()
    {
        RecallResult forward = _collection.Recall(new RecallQuery("capital_of", Concept: "city9", Direction: RecallDirection.Forward, K: 1)).AssertOk();
        Assert.Equal("country9", Assert.Single(forward.Nearest).Concept);
        Assert.Equal(1f, forward.ForwardWeight);

        RecallResult reverse = _collection.Recall(new RecallQuery("capital_of", Concept: "country9", Direction: RecallDirection.Reverse, K: 1)).AssertOk();
        Assert.Equal("city9", Assert.Single(reverse.Nearest).Concept);
        Assert.Equal(0f, reverse.ForwardWeight);
    }

    // A fact is answered from either end, so it is recalled through its relation's declared inverse
    // too: recalling has_capital over facts stored as capital_of failed ("no fact has a live
    // concept at the end being read"). A write to capital_of reaches has_capital's memory.
    [Fact]
    public async Task Recall_reads_the_facts_of_the_declared_inverse_the_other_way()
    {
        (await _collection.DefineRelationAsync(new RelationSpec("has_capital", InverseOf: "capital_of"))).AssertOk();
        var query = new RecallQuery("has_capital", Concept: "country9", Direction: RecallDirection.Forward, K: 1);
        Assert.Equal("city9", Assert.Single(_collection.Recall(query).AssertOk().Nearest).Concept);
        Assert.Equal("country9", Assert.Single(_collection.Recall(query with { Concept = "city9", Direction = RecallDirection.Reverse }).AssertOk().Nearest).Concept);

        (await _collection.RemoveFactsAsync([new FactKey("city9", "capital_of", "country9")])).AssertOk();
        Assert.NotEqual("city9", Assert.Single(_collection.Recall(query).AssertOk().Nearest).Concept);
    }

    // A pair stored both ways, x r y1 and y1 r′ x, is one fact and weighs as one: x's keys are all
    // alike, so forward recall is the plain mean of its values, (y1 + y2) / 2, not (2 y1 + y2) / 3.
    [Fact]
    public async Task Recall_counts_a_pair_stored_both_ways_once()
    {
        Collection both = Db.Create("both-ways", dimension: 4, metric: Metric.Dot);
        (await both.UpsertConceptsAsync([new ConceptInput("x", [0, 0, 1, 0]), new ConceptInput("y1", [1, 0, 0, 0]), new ConceptInput("y2", [0, 1, 0, 0])])).AssertOk();
        (await both.DefineRelationAsync(new RelationSpec("r", InverseOf: "r_of"))).AssertOk();
        (await both.AddFactsAsync([new FactInput("x", "r", "y1"), new FactInput("x", "r", "y2"), new FactInput("y1", "r_of", "x")])).AssertOk();

        float[] recalled = both.Recall(new RecallQuery("r", Concept: "x", Direction: RecallDirection.Forward)).AssertOk().Vector;

        Assert.Equal([0.5f, 0.5f, 0f, 0f], recalled, (a, b) => Math.Abs(a - b) < 1e-5f);
    }

    // A relation's recall memory was rebuilt after any write to the collection (each rebuild scans
    // every edge, and uploaded its indexes again); it is kept until a write changes that relation's
    // facts or properties, and such a write is seen by the next recall.
    [Fact]
    public async Task A_relations_recall_memory_outlives_writes_to_others_and_not_its_own()
    {
        var query = new RecallQuery("capital_of", Concept: "city9", Direction: RecallDirection.Forward, K: 1);
        Assert.Equal("country9", Assert.Single(_collection.Recall(query).AssertOk().Nearest).Concept);
        int built = _collection.RecallMemoriesBuilt;

        (await _collection.AddFactsAsync([new FactInput("city1", "borders", "city2")])).AssertOk();
        (await _collection.UpsertConceptsAsync([new ConceptInput("elsewhere", new float[Dimension])])).AssertOk();
        Assert.Equal("country9", Assert.Single(_collection.Recall(query).AssertOk().Nearest).Concept);
        Assert.Equal(built, _collection.RecallMemoriesBuilt);

        (await _collection.RemoveFactsAsync([new FactKey("city9", "capital_of", "country9")])).AssertOk();
        Assert.NotEqual("country9", Assert.Single(_collection.Recall(query).AssertOk().Nearest).Concept);
        Assert.Equal(built + 1, _collection.RecallMemoriesBuilt);
        (await _collection.DefineRelationAsync(new RelationSpec("capital_of", Symmetric: true))).AssertOk();
        _collection.Recall(query).AssertOk();
        Assert.Equal(built + 2, _collection.RecallMemoriesBuilt);
    }

    [Fact]
    public async Task Searches_see_writes_and_deletes_at_once()
    {
        (await _collection.DeleteConceptsAsync(["country7"])).AssertOk();
        SearchHit best = _collection.Search([new SearchQuery(Concept: "city7", Plus: ["capital_of"])], new SearchOptions(K: 1)).AssertOk()[0][0];
        Assert.NotEqual("country7", best.Concept);
        _collection.Recall(new RecallQuery("capital_of", Concept: "city7", Direction: RecallDirection.Forward, K: 50)).AssertOk()
            .Nearest.ToList().ForEach(hit => Assert.NotEqual("country7", hit.Concept));
    }

    // W takes a write's new rows 64 KB at a time (1,024 rows at d = 16): a write of 2,500 rows
    // spans three chunks, the last partial, and every row must land with its own norm.
    [Fact]
    public async Task A_write_of_more_rows_than_one_staging_chunk_sets_every_row()
    {
        Collection wide = Db.Create("wide", Dimension, Metric.L2);
        var random = new Random(11);
        ConceptInput[] concepts = [.. Enumerable.Range(0, 2500).Select(i => new ConceptInput(
            $"c{i}", [.. Enumerable.Range(0, Dimension).Select(_ => (float)random.NextDouble())]))];

        (await wide.UpsertConceptsAsync(concepts)).AssertOk();

        foreach (ConceptInput concept in concepts)
        {
            Assert.Equal(concept.Vector, wide.GetConcept(concept.Name).AssertOk().Vector);
        }

        ConceptInput[] sampled = [.. concepts.Where((_, i) => i % 97 == 0)];
        IReadOnlyList<IReadOnlyList<SearchHit>> hits = wide.Search([.. sampled.Select(concept => new SearchQuery(Vector: concept.Vector))], new SearchOptions(K: 1)).AssertOk();
        Assert.Equal(sampled.Select(concept => (concept.Name, 0f)), hits.Select(best => (best[0].Concept, best[0].Score)));
    }

    [Fact]
    public void Bad_queries_are_refused_naming_the_field()
    {
        _collection.Search([], new SearchOptions()).AssertError(ErrorCode.InvalidArgument, "queries");
        _collection.Search([new SearchQuery(Concept: "city1")], new SearchOptions(K: 0)).AssertError(ErrorCode.InvalidArgument, "k");
        _collection.Search([new SearchQuery(Concept: "city1")], new SearchOptions(K: 10_001)).AssertError(ErrorCode.InvalidArgument, "k");
        _collection.Search([new SearchQuery(new float[Dimension], "city1")], new SearchOptions()).AssertError(ErrorCode.InvalidArgument, "queries[0].vector");
        _collection.Search([new SearchQuery(Concept: "city1"), new SearchQuery(new float[3])], new SearchOptions()).AssertError(ErrorCode.InvalidArgument, "queries[1].vector");
        _collection.Search([new SearchQuery(Concept: "nowhere")], new SearchOptions()).AssertError(ErrorCode.NotFound, "queries[0].concept");
        _collection.Search([new SearchQuery(Concept: "city1", Plus: ["nope"])], new SearchOptions()).AssertError(ErrorCode.NotFound, "queries[0].plus[0]");
        _collection.Search([new SearchQuery(Concept: "city1", Minus: ["unlearned"])], new SearchOptions()).AssertError(ErrorCode.FailedPrecondition, "queries[0].minus[0]");
        // Each term copied every earlier one and a row-length vector, under the read lock: 30 000
        // terms took seconds and gigabytes while every other search waited.
        string[] terms = [.. Enumerable.Repeat("capital_of", Collection.MaxRelationTerms)];
        _collection.Search([new SearchQuery(Concept: "city1", Plus: terms[..^1], Minus: ["capital_of"])], new SearchOptions()).AssertOk();
        _collection.Search([new SearchQuery(Concept: "city1", Plus: terms, Minus: ["capital_of"])], new SearchOptions()).AssertError(ErrorCode.InvalidArgument, "queries[0].minus");
        _collection.Search([new SearchQuery(Concept: "city1", Plus: [.. terms, "capital_of"])], new SearchOptions()).AssertError(ErrorCode.InvalidArgument, "queries[0].plus");
        _collection.Relate("city1", "nowhere").AssertError(ErrorCode.NotFound, "b");
        _collection.Recall(new RecallQuery("capital_of")).AssertError(ErrorCode.InvalidArgument, "vector");
        _collection.Recall(new RecallQuery("capital_of", Concept: "city1", Beta: float.NaN)).AssertError(ErrorCode.InvalidArgument, "beta");
        _collection.Recall(new RecallQuery("nope", Concept: "city1")).AssertError(ErrorCode.NotFound, "relation");
    }
}
