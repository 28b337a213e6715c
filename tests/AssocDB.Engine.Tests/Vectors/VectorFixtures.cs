using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Vectors;

/// <summary>Seeded data and a float64 brute-force reference for the vector tests.</summary>
internal static class VectorFixtures
{
    /// <summary>Gaussian vectors, row-major; each vector scaled by a factor in [0.5, 2) when
    /// <paramref name="varyNorms"/> so dot and l2 rank differently from cosine.</summary>
    public static float[] Gaussian(Random random, int count, int d, bool varyNorms = true)
    {
        var data = new float[count * d];
        for (int i = 0; i < count; i++)
        {
            double scale = varyNorms ? 0.5 + (1.5 * random.NextDouble()) : 1;
            for (int j = 0; j < d; j++)
            {
                data[(i * d) + j] = (float)(scale * NextGaussian(random));
            }
        }

        return data;
    }

    /// <summary>Unit vectors, row-major.</summary>
    public static float[] Unit(Random random, int count, int d)
    {
        float[] data = Gaussian(random, count, d, varyNorms: false);
        for (int i = 0; i < count; i++)
        {
            Normalize(data.AsSpan(i * d, d));
        }

        return data;
    }

    public static void Normalize(Span<float> v)
    {
        double norm = Math.Sqrt(Dot64(v, v));
        foreach (ref float x in v)
        {
            x = (float)(x / norm);
        }
    }

    public static double NextGaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public static double Dot64(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += (double)a[i] * b[i];
        }

        return sum;
    }

    /// <summary>The metric's score in float64.</summary>
    public static double Score64(Metric metric, ReadOnlySpan<float> w, ReadOnlySpan<float> q) => metric switch
    {
        Metric.Cosine => Dot64(w, q) / Math.Max(Math.Sqrt(Dot64(w, w) * Dot64(q, q)), double.Epsilon),
        Metric.Dot => Dot64(w, q),
        _ => -SquaredDistance64(w, q),
    };

    /// <summary>‖w − q‖² in float64 from the differences (exact enough at any distance from the origin).</summary>
    private static double SquaredDistance64(ReadOnlySpan<float> w, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (int i = 0; i < w.Length; i++)
        {
            double difference = (double)w[i] - q[i];
            sum += difference * difference;
        }

        return sum;
    }

    /// <summary>All eligible rows with their float64 scores, best first (score desc, row asc).</summary>
    public static (int Row, double Score)[] BruteForce(
        ConceptMatrix matrix, float[] reference, ReadOnlySpan<float> query, Func<int, bool> eligible)
    {
        int d = matrix.Dimension;
        var all = new List<(int Row, double Score)>();
        for (int row = 0; row < matrix.RowLimit; row++)
        {
            if (matrix.IsLive(row) && eligible(row))
            {
                all.Add((row, Score64(matrix.Metric, reference.AsSpan(row * d, d), query)));
            }
        }

        (int Row, double Score)[] sorted = [.. all];
        Array.Sort(sorted, (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Row.CompareTo(b.Row));
        return sorted;
    }

    /// <summary>Asserts that hits are the exact top-k of <paramref name="expected"/>, ties aside:
    /// same count; each position's score within <paramref name="tolerance"/> of the reference's; every
    /// row clearly inside the top k returned and none clearly outside it; order score desc, row asc.</summary>
    public static void AssertExactTopK(SearchHits hits, (int Row, double Score)[] expected, int k, double tolerance, string context)
    {
        int count = Math.Min(k, expected.Length);
        Assert.True(count == hits.Count, $"{context}: expected {count} hits, got {hits.Count}");
        for (int i = 0; i < count; i++)
        {
            Assert.True(Math.Abs(hits.Scores[i] - expected[i].Score) <= tolerance,
                $"{context}: hit {i} scores {hits.Scores[i]}, reference {expected[i].Score} (row {hits.Rows[i]} vs {expected[i].Row})");
            if (i > 0)
            {
                Assert.True(hits.Scores[i - 1] > hits.Scores[i] || (hits.Scores[i - 1] == hits.Scores[i] && hits.Rows[i - 1] < hits.Rows[i]),
                    $"{context}: hits {i - 1} and {i} out of order");
            }
        }

        if (count == 0)
        {
            return;
        }

        double kth = expected[count - 1].Score;
        var returned = new HashSet<int>(hits.Rows);
        Assert.Equal(count, returned.Count);
        var scoreOf = expected.ToDictionary(e => e.Row, e => e.Score);
        foreach (int row in hits.Rows)
        {
            Assert.True(scoreOf.TryGetValue(row, out double score), $"{context}: row {row} is not eligible");
            Assert.True(score >= kth - tolerance, $"{context}: row {row} ({score}) is clearly below the k-th score {kth}");
        }

        foreach ((int row, double score) in expected.Take(count))
        {
            Assert.True(score <= kth + tolerance || returned.Contains(row), $"{context}: row {row} ({score}) clearly in the top k is missing");
        }
    }
}
