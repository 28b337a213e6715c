using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards the int8 coarse pass: what it ranks candidates by really is an upper bound of every row's
// exact score (the exactness proof rests on it), close enough to rank by, and searches through it
// equal the exact scan without falling back, for dimensions
// that are not a multiple of the 4-byte groups, zero rows, duplicate rows (ties) and rows far
// larger than the rest.
public sealed class Int8CoarseScorerTests
{
    public static TheoryData<Metric, int> Cases()
    {
        var data = new TheoryData<Metric, int>();
        foreach (Metric metric in Enum.GetValues<Metric>())
        {
            data.Add(metric, 37);
            data.Add(metric, 128);
            data.Add(metric, 201); // wider than 128, with 9 coordinates past the 16-wide loop
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_coarse_score_is_within_its_bound_and_searches_equal_the_scan(Metric metric, int d)
    {
        if (!Int8CoarseScorer.IsSupported)
        {
            Assert.Throws<PlatformNotSupportedException>(() => new ChunkedGemmKernel(coarseType: CoarsePrecision.Int8));
            return;
        }

        var random = new Random((31 * (int)metric) + d);
        const int Rows = 3000;
        using var matrix = new ConceptMatrix(d, CPU, metric, StoragePrecision.Float32, initialCapacity: 64);
        float[] vectors = VectorFixtures.Gaussian(random, Rows, d);
        vectors.AsSpan(5 * d, d).Clear();
        vectors.AsSpan(10 * d, d).CopyTo(vectors.AsSpan(11 * d));
        foreach (ref float x in vectors.AsSpan(20 * d, d))
        {
            x *= 1000;
        }

        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        matrix.Remove(7);

        float[] queries = VectorFixtures.Gaussian(random, 13, d);
        vectors.AsSpan(10 * d, d).CopyTo(queries);
        queries.AsSpan(d, d).Clear();
        var batch = QueryBatch.Prepare(queries, d, metric);

        var scan = new ScanKernel();
        foreach (ByteProducts products in Int8CoarseScorer.SupportedProducts)
        {
            (TopKCollector[] all, float[] residuals) = Int8CoarseScorer.Candidates(matrix, batch, Rows, allowed: null, parallelism: 2, products);
            for (int j = 0; j < batch.Count; j++)
            {
                SearchHits upper = all[j].ToHits();
                Assert.Equal(Rows - 1, upper.Rows.Length);
                Assert.DoesNotContain(7, upper.Rows);
                SearchHits exact = scan.Search(matrix, queries.AsSpan(j * d, d), Rows)[0];
                var exactScore = exact.Rows.Zip(exact.Scores).ToDictionary(p => p.First, p => p.Second);
                var slack = new List<double>();
                for (int i = 0; i < upper.Rows.Length; i++)
                {
                    float score = exactScore[upper.Rows[i]];
                    Assert.True(score <= upper.Scores[i] + residuals[j], $"{products}, query {j} row {upper.Rows[i]}: exact {score} above its bound {upper.Scores[i]} + {residuals[j]}");
                    slack.Add(upper.Scores[i] - score);
                }

                // Loose bounds would send every query to the fallback: the typical slack must be a
                // small fraction of the spread of scores.
                double spread = exact.Scores[0] - exact.Scores[^1];
                slack.Sort();
                Assert.True(slack[slack.Count / 2] <= 0.05 * spread, $"{products}, query {j}: median slack {slack[slack.Count / 2]} against a score spread of {spread}");
            }
        }

        var gemm = new ChunkedGemmKernel(coarseType: CoarsePrecision.Int8);
        AssertSameAsScan(gemm, matrix, queries, 1, 10, 100);

        Assert.True(gemm.FallbackQueries < 3 * 13 / 4, $"int8 fell back for {gemm.FallbackQueries} of {3 * 13} queries");
    }

    // The bound's worst case: rows on the int8 grid (step 1, no rounding of their own) and queries
    // whose every coordinate but the largest rounds off by 0.499 of the query's step in the
    // direction of the row's sign, so the coarse score falls short by 0.499·s_q·Σ|w̃| and only the
    // bound's Σ|w̃| term (0.505·s_q·Σ|w̃|) covers it. Each row of three 16-row blocks is checked, so a
    // per-row sum taken from the wrong row, lane or coordinate group breaks the bound or leaves it
    // loose; each instruction set the CPU has is checked with its own query levels.
    [Theory]
    [InlineData(128)]
    [InlineData(37)]
    public void Queries_rounding_against_a_row_at_every_coordinate_stay_within_its_bound(int d)
    {
        foreach (ByteProducts products in Int8CoarseScorer.SupportedProducts)
        {
            QueriesRoundingAgainstEveryCoordinate(d, products);
        }
    }

    private static void QueriesRoundingAgainstEveryCoordinate(int d, ByteProducts products)
    {
        float step = 127f / Int8CoarseScorer.QueryLevels(products, (d + 3) & ~3);
        const int Rows = 48;
        var random = new Random(d);
        using var matrix = new ConceptMatrix(d, CPU, Metric.Dot, StoragePrecision.Float32, initialCapacity: 64);
        float[] vectors = new float[Rows * d];
        for (int row = 0; row < Rows; row++)
        {
            vectors[row * d] = 127;
            for (int i = 1; i < d; i++)
            {
                vectors[(row * d) + i] = random.Next(1, 128) * (random.Next(2) == 0 ? -1 : 1);
            }
        }

        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] queries = new float[Rows * d];
        for (int row = 0; row < Rows; row++)
        {
            queries[row * d] = 127;
            for (int i = 1; i < d; i++)
            {
                queries[(row * d) + i] = 0.499f * step * MathF.Sign(vectors[(row * d) + i]);
            }
        }

        var batch = QueryBatch.Prepare(queries, d, Metric.Dot);
        (TopKCollector[] all, float[] residuals) = Int8CoarseScorer.Candidates(matrix, batch, Rows, allowed: null, parallelism: 2, products);
        for (int row = 0; row < Rows; row++)
        {
            SearchHits upper = all[row].ToHits();
            float bound = upper.Scores[Array.IndexOf(upper.Rows, row)] + residuals[row];
            double exact = 0, shortfall = 0, queryL1 = 0, rowNorm = 0;
            for (int i = 0; i < d; i++)
            {
                exact += (double)vectors[(row * d) + i] * queries[(row * d) + i];
                shortfall += i == 0 ? 0 : 0.499 * step * Math.Abs(vectors[(row * d) + i]);
                queryL1 += Math.Abs(queries[(row * d) + i]);
                rowNorm += (double)vectors[(row * d) + i] * vectors[(row * d) + i];
            }

            // What the bound may add beyond the shortfall: its 1 % slack, the largest coordinate's
            // term (which has no shortfall), the row-rounding term ½·‖q‖₁ (this row needs none) and
            // the canonical score's float32 rounding, 2·(d·2⁻²³ + 2⁻²¹)·‖w‖·‖q‖₁ (a few units here,
            // which only the fine steps of int16 query codes leave without a larger slack to hide in).
            double rounding = 2 * ((d * Math.Pow(2, -23)) + Math.Pow(2, -21)) * Math.Sqrt(rowNorm) * queryL1;
            double allowance = (0.02 * shortfall) + (0.51 * ((127 * step) + queryL1)) + (1.01 * rounding);
            Assert.True(exact <= bound, $"{products}, row {row}: exact {exact} above its bound {bound}");
            Assert.True(bound - exact < allowance, $"{products}, row {row}: bound {bound} loose by {bound - exact}, more than {allowance}");
        }
    }

    // The integer sums at their largest: rows and queries of ±1 (or ±2²⁰) at every coordinate quantize
    // to ±127 and ± the full query levels, so a row's product sums d·127·L, which at the largest
    // dimension (4 096, L = 4 095) is within 1 % of int.MaxValue; levels past what an int32 holds,
    // or a sum taken in narrower lanes, wrap it and drop the bound far below the exact score.
    // Dimensions under one 4-coordinate group check the padding of rows and query codes.
    [Theory]
    [InlineData(Validation.MaxDimension)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Full_scale_codes_sum_without_overflow_at_the_largest_and_smallest_dimensions(int d)
    {
        if (!Int8CoarseScorer.IsSupported)
        {
            return;
        }

        const int Rows = 48, Queries = 8;
        var random = new Random(d);
        using var matrix = new ConceptMatrix(d, CPU, Metric.Dot, StoragePrecision.Float32, initialCapacity: 64);
        float[] vectors = FullScale(random, Rows, d);
        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] queries = FullScale(random, Queries, d);
        var batch = QueryBatch.Prepare(queries, d, Metric.Dot);
        foreach (ByteProducts products in Int8CoarseScorer.SupportedProducts)
        {
            (TopKCollector[] all, float[] residuals) = Int8CoarseScorer.Candidates(matrix, batch, Rows, allowed: null, parallelism: 2, products);
            for (int j = 0; j < Queries; j++)
            {
                SearchHits upper = all[j].ToHits();
                for (int row = 0; row < Rows; row++)
                {
                    double exact = 0, absoluteProducts = 0, rowNorm = 0, queryL1 = 0;
                    for (int i = 0; i < d; i++)
                    {
                        double w = vectors[(row * d) + i], q = queries[(j * d) + i];
                        exact += w * q;
                        absoluteProducts += Math.Abs(w * q);
                        rowNorm += w * w;
                        queryL1 += Math.Abs(q);
                    }

                    // Nothing rounds here (every coordinate is on its grid), so the bound is its own
                    // terms: half a step of each side (at most 1/254 of the products each, with 1 %
                    // slack), the canonical score's float32 rounding, 2·(d·2⁻²³ + 2⁻²¹)·‖w‖·‖q‖₁, and
                    // the float32 arithmetic that makes the bound of those terms (a few 2⁻²⁴ of
                    // each). The scorer's own slack is the same 1 %, so without the last term a bound
                    // exactly as loose as designed failed by that arithmetic (AVX-VNNI, d = 3: loose
                    // by 0.02386713, allowed 0.02386703).
                    float bound = upper.Scores[Array.IndexOf(upper.Rows, row)] + residuals[j];
                    double rounding = 2 * ((d * Math.Pow(2, -23)) + Math.Pow(2, -21)) * Math.Sqrt(rowNorm) * queryL1;
                    double arithmetic = 4 * Math.Pow(2, -24) * (absoluteProducts + Math.Abs(bound));
                    double allowance = (1.01 * 2 / 254 * absoluteProducts) + (1.01 * rounding) + arithmetic;
                    Assert.True(exact <= bound, $"{products}, d = {d}, query {j} row {row}: exact {exact} above its bound {bound}");
                    Assert.True(bound - exact <= allowance, $"{products}, d = {d}, query {j} row {row}: bound {bound} loose by {bound - exact}, more than {allowance}");
                }
            }
        }

        AssertSameAsScan(new ChunkedGemmKernel(coarseType: CoarsePrecision.Int8), matrix, queries, 1, 10);
    }

    /// <summary>Vectors whose every coordinate is ±1 or ±2²⁰, so that each quantizes to ± its full
    /// scale: the first all +1, the second all −1 (the largest sums of both signs against each
    /// other), the rest random signs, and every third scaled up so that rows and queries differ in
    /// magnitude as well as direction.</summary>
    private static float[] FullScale(Random random, int count, int d)
    {
        float[] vectors = new float[count * d];
        for (int v = 0; v < count; v++)
        {
            float magnitude = v % 3 == 2 ? 1 << 20 : 1;
            for (int i = 0; i < d; i++)
            {
                int sign = v == 0 ? 1 : v == 1 ? -1 : (random.Next(2) * 2) - 1;
                vectors[(v * d) + i] = sign * magnitude;
            }
        }

        return vectors;
    }

    // The cut that trims a full candidate list keeps exactly the m best (rows paired with their
    // scores) and returns the lowest of them, bit for bit: lists with both signs, ±0, +∞, runs of
    // equal scores at the cut, keep = count − 1, and lengths that are not a multiple of 16.
    [Theory]
    [InlineData(148, 74, 0)]
    [InlineData(148, 147, 1)]
    [InlineData(37, 20, 2)]
    [InlineData(2048, 1024, 3)]
    [InlineData(300, 150, 4)]
    public unsafe void The_candidate_cut_keeps_exactly_the_best_and_returns_the_lowest_kept(int count, int keep, int seed)
    {
        var random = new Random(seed);
        float[] pool = [0f, -0f, 1f, -1f, 0.25f, float.PositiveInfinity, -3.5e-30f, 7e20f];
        float[] scores = Enumerable.Range(0, count)
            .Select(i => seed % 2 == 0 && i % 3 == 0 ? pool[random.Next(pool.Length)] : (float)((random.NextDouble() * 2) - 1))
            .ToArray();
        int[] rows = Enumerable.Range(1000, count).ToArray();
        var pairs = scores.Zip(rows).ToHashSet();
        float[] expected = [.. scores.OrderDescending().Take(keep)];

        float lowest;
        fixed (float* s = scores)
        fixed (int* r = rows)
        {
            lowest = Int8CoarseScorer.KeepBest(s, r, count, keep);
        }

        float[] kept = scores[..keep];
        Assert.Equal(expected.Order(), kept.Order());
        Assert.All(kept.Zip(rows[..keep]), pair => Assert.Contains(pair, pairs));
        Assert.Equal(kept.Min(), lowest);
        Assert.Contains(BitConverter.SingleToInt32Bits(lowest), kept.Select(BitConverter.SingleToInt32Bits));
    }

    // Hundreds of identical rows make the candidate lists overflow with equal bounds, so each cut
    // that trims a list to the m kept falls inside a run of ties: it must keep exactly m, and the
    // search must still equal the scan (which breaks ties by row).
    [Theory]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.L2)]
    public void Runs_of_tied_rows_at_the_candidate_cut_still_give_the_scans_answer(Metric metric)
    {
        if (!Int8CoarseScorer.IsSupported)
        {
            return;
        }

        const int Rows = 4000, D = 64;
        var random = new Random(17 + (int)metric);
        using var matrix = new ConceptMatrix(D, CPU, metric, StoragePrecision.Float32, initialCapacity: 64);
        float[] vectors = VectorFixtures.Gaussian(random, Rows, D);
        for (int row = 1; row < Rows; row += 8)
        {
            vectors.AsSpan(0, D).CopyTo(vectors.AsSpan(row * D, D));
        }

        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] queries = VectorFixtures.Gaussian(random, 8, D);
        vectors.AsSpan(0, D).CopyTo(queries);
        AssertSameAsScan(new ChunkedGemmKernel(coarseType: CoarsePrecision.Int8), matrix, queries, 1, 10, 300);
    }

    // The int8 bound covers coordinates in [2⁻⁶⁰, 2⁵⁰]: rows below it (a vector decayed towards zero)
    // or above it, and queries like that, must still be answered exactly, not silently dropped.
    [Theory]
    [InlineData(Metric.Cosine, 37)]
    [InlineData(Metric.Cosine, 128)]
    [InlineData(Metric.Dot, 3)]
    [InlineData(Metric.Dot, 128)]
    [InlineData(Metric.L2, 37)]
    public void Rows_and_queries_outside_the_quantized_range_are_still_answered_exactly(Metric metric, int d)
    {
        if (!Int8CoarseScorer.IsSupported)
        {
            return;
        }

        var random = new Random((7 * (int)metric) + d);
        const int Rows = 2000;
        using var matrix = new ConceptMatrix(d, CPU, metric, StoragePrecision.Float32, initialCapacity: 64);
        float[] vectors = VectorFixtures.Gaussian(random, Rows, d);
        foreach (int row in new[] { 3, 500, 1999 })
        {
            foreach (ref float x in vectors.AsSpan(row * d, d))
            {
                x *= 1e-38f;
            }
        }

        foreach (ref float x in vectors.AsSpan(42 * d, d))
        {
            x *= 1e16f;
        }

        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] queries = VectorFixtures.Gaussian(random, 8, d);
        vectors.AsSpan(3 * d, d).CopyTo(queries);
        foreach (ref float x in queries.AsSpan(d, d))
        {
            x *= 1e-38f;
        }

        AssertSameAsScan(new ChunkedGemmKernel(coarseType: CoarsePrecision.Int8), matrix, queries, 1, 10);
    }

    /// <summary>The kernel returns the scan's rows and bit-identical scores for every query and k.</summary>
    private static void AssertSameAsScan(ChunkedGemmKernel gemm, ConceptMatrix matrix, float[] queries, params int[] ks)
    {
        var scan = new ScanKernel();
        foreach (int k in ks)
        {
            SearchHits[] expected = scan.Search(matrix, queries, k);
            SearchHits[] actual = gemm.Search(matrix, queries, k);
            for (int j = 0; j < expected.Length; j++)
            {
                Assert.Equal(expected[j].Rows, actual[j].Rows);
                Assert.Equal(expected[j].Scores, actual[j].Scores);
            }
        }
    }
}
