using AssocDB.Engine.Learning;
using AssocDB.Engine.Tests.Support;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Learning;

/// <summary>Guards the filtered, tie-aware ranking protocol: exact ranks on a hand-made line of
/// concepts, other known answers filtered out, and all-equal scores ranked at the random-guess
/// mean rather than first.</summary>
public sealed class LinkPredictionEvaluatorTests
{
    // Five concepts on a line at 0, 1, 2, 3, 4 (d = 1); relation 0 moves one step right.
    private static readonly float[] Line = [0f, 1f, 2f, 3f, 4f];
    private static readonly EmbeddingModel TransE = new(EmbeddingModelKind.TransE, 1);

    [Fact]
    public void A_perfect_model_ranks_every_answer_first()
    {
        Triple[] test = [new(0, 0, 1), new(2, 0, 3)];
        LinkPredictionResult result = Evaluate(Line, [1f], test, new KnownTriples(test));
        Assert.Equal(1.0, result.Overall.Mrr);
        Assert.Equal(1.0, result.Overall.HitsAt1);
        Assert.Equal(4, result.Overall.Queries);
    }

    [Fact]
    public void Other_known_answers_are_filtered_out()
    {
        // Relation 0 moves two steps: for (0, r, ?) the query lands on 2. The true answer 3 is
        // beaten by 2 (distance 0) and tied with 1 (distance 1): raw rank = (optimistic 2 + pessimistic 3)/2
        // = 2.5. When (0, r, 2) is known, 2 is filtered and the rank becomes (1 + 2)/2 = 1.5.
        Triple[] test = [new(0, 0, 3)];
        LinkPredictionResult raw = Evaluate(Line, [2f], test, new KnownTriples(test));
        LinkPredictionResult filtered = Evaluate(Line, [2f], test, new KnownTriples(test, [new(0, 0, 2)]));
        Assert.Equal(1 / 2.5, raw.TailPrediction.Mrr, 9);
        Assert.Equal(1 / 1.5, filtered.TailPrediction.Mrr, 9);
    }

    [Fact]
    public void Equal_scores_give_the_mean_rank_not_the_first()
    {
        Triple[] test = [new(0, 0, 1)];
        LinkPredictionResult result = Evaluate(new float[5], [0f], test, new KnownTriples(test));
        Assert.Equal(3.0, result.Overall.MeanRank);
        Assert.Equal(0.0, result.Overall.HitsAt1);
    }

    [Fact]
    public void Results_render_as_table_and_json()
    {
        Triple[] test = [new(0, 0, 1)];
        LinkPredictionResult result = Evaluate(Line, [1f], test, new KnownTriples(test));
        string table = result.ToTable(["next"]);
        Assert.Contains("next", table, StringComparison.Ordinal);
        Assert.Contains("1.000", table, StringComparison.Ordinal);
        using var json = System.Text.Json.JsonDocument.Parse(result.ToJson(["next"]));
        Assert.Equal(1.0, json.RootElement.GetProperty("overall").GetProperty("mrr").GetDouble());
        Assert.Equal("next", json.RootElement.GetProperty("perRelation")[0].GetProperty("name").GetString());
    }

    // NaN compares false both ways, so a NaN answer used to rank ½ (reciprocal rank 2, a hit at 1):
    // a diverged model looked perfect. It ranks last instead.
    [Fact]
    public void An_answer_scored_nan_ranks_last()
    {
        float[] concepts = [.. Line];
        concepts[4] = float.NaN;
        RankingMetrics tail = new LinkPredictionEvaluator(CPU).Evaluate(TransE, concepts, [1f], [new Triple(3, 0, 4)], new KnownTriples()).Value.TailPrediction;
        Assert.Equal((5.0, 0.0), (tail.MeanRank, tail.HitsAt1));

        // Last among the candidates left: known answers filtered out and unused rows are not ones
        // (it ranked 4, past the 3 left, which lowered MR and MRR beyond the worst).
        RankingMetrics filtered = new LinkPredictionEvaluator(CPU)
            .Evaluate(TransE, concepts, [1f], [new Triple(3, 0, 4)], new KnownTriples([new Triple(3, 0, 2)]), unusedRows: [0]).Value.TailPrediction;
        Assert.Equal(3.0, filtered.MeanRank);
    }

    // Rows that are not candidates (deleted concepts, whose rows are zero) are never ranked.
    [Fact]
    public void Unused_rows_are_not_ranked()
    {
        // The query lands on 3.4: the answer 3 is 0.4 away, concept 0 (moved to 3.5) 0.1.
        float[] concepts = [.. Line];
        concepts[0] = 3.5f;
        Triple[] test = [new Triple(2, 0, 3)];
        var evaluator = new LinkPredictionEvaluator(CPU);
        Assert.Equal(2.0, evaluator.Evaluate(TransE, concepts, [1.4f], test, new KnownTriples()).Value.TailPrediction.MeanRank);
        Assert.Equal(1.0, evaluator.Evaluate(TransE, concepts, [1.4f], test, new KnownTriples(), unusedRows: [0]).Value.TailPrediction.MeanRank);
        Assert.Equal("test[0]", evaluator.Evaluate(TransE, concepts, [1.4f], test, new KnownTriples(), unusedRows: [3]).Error!.Field);
    }

    [Fact]
    public void Ids_outside_the_matrices_are_reported()
    {
        var result = new LinkPredictionEvaluator(CPU).Evaluate(TransE, Line, [1f], [new Triple(0, 0, 9)], new KnownTriples());
        Assert.False(result.IsOk);
        Assert.Equal("test[0]", result.Error!.Field);
    }

    // Ranking a million concepts scored 256 queries at once (a gigabyte) and gathered a batch's
    // known answers into one list, as long as a hub's answers are; both are bounded now. The
    // bounds split the work, and must leave every rank as it was.
    [Theory]
    [InlineData(EmbeddingModelKind.TransE, DistanceNorm.L1)]
    [InlineData(EmbeddingModelKind.TransE, DistanceNorm.L2)]
    [InlineData(EmbeddingModelKind.RotatE, DistanceNorm.L1)]
    public void Memory_bounds_split_the_work_and_leave_the_ranks_as_they_were(EmbeddingModelKind kind, DistanceNorm norm)
    {
        TripleDataset nations = KgData.Load("nations");
        var model = new EmbeddingModel(kind, 8, norm);
        var random = new Random(20261202);
        float[] concepts = [.. Enumerable.Range(0, nations.Concepts.Count * model.Dimension).Select(_ => (float)random.NextDouble())];
        float[] relations = [.. Enumerable.Range(0, nations.Relations.Count * model.RelationDimension).Select(_ => (float)random.NextDouble())];
        var known = new KnownTriples([.. nations.Train, .. nations.Validation, .. nations.Test]);

        LinkPredictionResult whole = new LinkPredictionEvaluator(CPU).Evaluate(model, concepts, relations, nations.Test, known).Value;
        // Three queries a call, and two filtered answers applied at a time.
        LinkPredictionResult bounded = new LinkPredictionEvaluator(CPU, batchSize: 256, maxScores: 3 * nations.Concepts.Count, maxFilterEntries: 2)
            .Evaluate(model, concepts, relations, nations.Test, known).Value;

        Assert.Equal((whole.Overall, whole.TailPrediction, whole.HeadPrediction), (bounded.Overall, bounded.TailPrediction, bounded.HeadPrediction));
        // A relation's tally adds its tail and head ranks in the order the calls end: the sums
        // may differ in their last bit.
        static object Rounded(RelationRankingMetrics r) =>
            (r.Relation, r.Metrics.Queries, Math.Round(r.Metrics.Mrr, 12), Math.Round(r.Metrics.MeanRank, 12), r.Metrics.HitsAt1, r.Metrics.HitsAt3, r.Metrics.HitsAt10);
        Assert.Equal(whole.PerRelation.Select(Rounded), bounded.PerRelation.Select(Rounded));
        Assert.InRange(whole.Overall.Mrr, 0, 0.99);
    }

    // An evaluate job's progress stayed at 0 until it ended: ranking reported none.
    [Fact]
    public void Ranking_reports_the_share_of_test_facts_ranked_after_each_batch()
    {
        var reported = new List<double>();
        Triple[] test = [new(0, 0, 1), new(1, 0, 2), new(2, 0, 3)];

        new LinkPredictionEvaluator(CPU, batchSize: 2).Evaluate(TransE, Line, [1f], test, new KnownTriples(), progress: new CallbackProgress<double>(reported.Add)).AssertOk();

        Assert.Equal([2.0 / 3, 1.0], reported);
    }

    private static LinkPredictionResult Evaluate(float[] concepts, float[] relations, Triple[] test, KnownTriples known) =>
        new LinkPredictionEvaluator(CPU, batchSize: 1).Evaluate(TransE, concepts, relations, test, known).Value;
}
