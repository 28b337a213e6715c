using System.Globalization;
using System.Text;
using System.Text.Json;

namespace AssocDB.Engine.Learning;

/// <summary>Ranking quality over a set of queries. Ranks are filtered and tie-aware (see
/// <see cref="LinkPredictionEvaluator"/>), so they can be fractional.</summary>
/// <param name="Queries">Ranked queries (two per test triple when both directions are counted).</param>
/// <param name="Mrr">Mean reciprocal rank.</param>
/// <param name="MeanRank">Mean rank.</param>
/// <param name="HitsAt1">Share of queries ranked ≤ 1.</param>
/// <param name="HitsAt3">Share of queries ranked ≤ 3.</param>
/// <param name="HitsAt10">Share of queries ranked ≤ 10.</param>
public sealed record RankingMetrics(long Queries, double Mrr, double MeanRank, double HitsAt1, double HitsAt3, double HitsAt10);

/// <summary>Ranking quality for one relation, both directions together.</summary>
public sealed record RelationRankingMetrics(int Relation, RankingMetrics Metrics);

/// <summary>
/// Filtered link-prediction results: both directions together (the usual headline figures), each
/// direction alone, and per relation.
/// </summary>
/// <param name="Overall">Tail and head queries together.</param>
/// <param name="TailPrediction">Queries <c>(h, r, ?)</c>.</param>
/// <param name="HeadPrediction">Queries <c>(?, r, t)</c>.</param>
/// <param name="PerRelation">Per relation id that occurs in the test split, ascending.</param>
/// <param name="Elapsed">Wall time of the evaluation.</param>
public sealed record LinkPredictionResult(
    RankingMetrics Overall,
    RankingMetrics TailPrediction,
    RankingMetrics HeadPrediction,
    IReadOnlyList<RelationRankingMetrics> PerRelation,
    TimeSpan Elapsed)
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>A fixed-width table for people: one row each for both directions, tail, head, then
    /// every relation (named when <paramref name="relationNames"/> is given).</summary>
    public string ToTable(IReadOnlyList<string>? relationNames = null)
    {
        var rows = new List<(string Label, RankingMetrics Metrics)>
        {
            ("all (both directions)", Overall),
            ("tail (h, r, ?)", TailPrediction),
            ("head (?, r, t)", HeadPrediction),
        };
        rows.AddRange(PerRelation.Select(r => (NameOf(r.Relation, relationNames), r.Metrics)));
        int width = Math.Max(24, rows.Max(r => r.Label.Length) + 2);

        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"queries".PadLeft(width + 8)}{"MRR",8}{"MR",10}{"H@1",8}{"H@3",8}{"H@10",8}\n");
        foreach ((string label, RankingMetrics m) in rows)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"{label.PadRight(width)}{m.Queries,8}{m.Mrr,8:F3}{m.MeanRank,10:F1}{m.HitsAt1,8:F3}{m.HitsAt3,8:F3}{m.HitsAt10,8:F3}\n");
        }

        return text.ToString();
    }

    /// <summary>The same figures as JSON for scripts; per-relation entries carry the name when
    /// <paramref name="relationNames"/> is given.</summary>
    public string ToJson(IReadOnlyList<string>? relationNames = null) =>
        JsonSerializer.Serialize(
            new
            {
                Overall,
                TailPrediction,
                HeadPrediction,
                PerRelation = PerRelation.Select(r => new { r.Relation, Name = relationNames?[r.Relation], r.Metrics }),
                ElapsedSeconds = Elapsed.TotalSeconds,
            },
            JsonOptions);

    private static string NameOf(int relation, IReadOnlyList<string>? names) =>
        names is not null && relation < names.Count ? names[relation] : $"relation {relation}";
}
