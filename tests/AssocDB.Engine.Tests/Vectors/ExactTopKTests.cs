using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards exactness: every kernel, for every metric and storage precision, returns the float64
// brute-force top-k (ties aside), also after deletes, overwrites and growth, with exclusions and filters.
public sealed class ExactTopKTests
{
    private const int Dimension = 40;
    private const int QueryCount = 12;

    public static TheoryData<Metric, StoragePrecision> Cases()
    {
        var data = new TheoryData<Metric, StoragePrecision>();
        foreach (Metric metric in Enum.GetValues<Metric>())
        {
            foreach (StoragePrecision precision in Enum.GetValues<StoragePrecision>())
            {
                data.Add(metric, precision);
            }
        }

        return data;
    }

    // Candidate lists grow with batch × k × threads (10 000 queries at k = 1 000 held 6.4 GB on 16
    // cores); past the kernel's budget a batch is searched in parts, each query keeping its own
    // exclusions, with the answers of one pass.
    [Fact]
    public void A_batch_past_the_candidate_budget_is_searched_in_parts_with_the_same_answers()
    {
        var random = new Random(11);
        const int Rows = 2000, Queries = 13;
        using var matrix = new ConceptMatrix(Dimension, CPU, Metric.Cosine, StoragePrecision.Float32, initialCapacity: 64);
        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), VectorFixtures.Gaussian(random, Rows, Dimension));
        float[] queries = VectorFixtures.Gaussian(random, Queries, Dimension);
        // Query j is row j, which it excludes: an exclusion applied to the wrong query changes the top hit.
        for (int j = 0; j < Queries; j++)
        {
            queries.AsSpan(j * Dimension, Dimension).Clear();
            matrix.GetRow(j).CopyTo(queries, j * Dimension);
        }

        var filter = new SearchFilter([.. Enumerable.Range(0, Queries).Select(j => (IReadOnlyCollection<int>)[j, 2 * j])]);

        SearchHits[] expected = new ScanKernel().Search(matrix, queries, 100, filter);
        foreach (CoarsePrecision coarse in Enum.GetValues<CoarsePrecision>().Where(p => p is not (CoarsePrecision.Auto or CoarsePrecision.Int8) || Int8CoarseScorer.IsSupported))
        {
            // 64 KiB holds the lists of about four queries at k = 100 on two threads.
            SearchHits[] actual = new ChunkedGemmKernel(coarseType: coarse, maxDegreeOfParallelism: 2, maxCandidateBytes: 1 << 16).Search(matrix, queries, 100, filter);
            for (int j = 0; j < Queries; j++)
            {
                Assert.Equal(expected[j].Rows, actual[j].Rows);
                Assert.Equal(expected[j].Scores, actual[j].Scores);
            }
        }
    }

    // A zero row scores 0 under cosine, here above every other row. The float16/bfloat16 coarse
    // passes normalized rows by multiplying with 1/max(‖w‖, ε) = ∞, which made the zero row NaN, and
    // no candidate list keeps NaN: those paths alone lost the best answer.
    [Theory]
    [InlineData(StoragePrecision.Float32)]
    [InlineData(StoragePrecision.Float16)]
    [InlineData(StoragePrecision.BFloat16)]
    public void A_zero_row_is_found_by_every_kernel_under_cosine(StoragePrecision precision)
    {
        var random = new Random(3);
        const int Rows = 300;
        float[] vectors = VectorFixtures.Gaussian(random, Rows, Dimension);
        for (int row = 0; row < Rows; row++)
        {
            vectors[row * Dimension] = -Math.Abs(vectors[row * Dimension]) - 3;
        }

        vectors.AsSpan(7 * Dimension, Dimension).Clear();
        using var matrix = new ConceptMatrix(Dimension, CPU, Metric.Cosine, precision, initialCapacity: 64);
        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] query = new float[Dimension];
        query[0] = 1;

        ISearchKernel[] kernels = EveryKernel();
        foreach (ISearchKernel kernel in kernels)
        {
            SearchHits hits = kernel.Search(matrix, query, 3)[0];
            Assert.True(hits.Rows.Length > 0 && hits.Rows[0] == 7, $"{kernel.Name}: first row {(hits.Rows.Length > 0 ? hits.Rows[0] : -1)}, expected the zero row 7");
        }
    }

    // l2 in the expanded form ‖w‖² − 2w·q + ‖q‖² cancels in float32 when the distances are small
    // next to the norms: every score here came out 0 or a multiple of ±8, and the farthest of two
    // rows could rank first on its row id. Points a few hundredths apart near (1000, ..., 1000) are
    // what coordinates and un-centred embeddings look like; every kernel must still rank them by
    // their distance.
    [Theory]
    [InlineData(StoragePrecision.Float32)]
    [InlineData(StoragePrecision.Float16)]
    [InlineData(StoragePrecision.BFloat16)]
    public void Every_kernel_ranks_l2_by_distance_far_from_the_origin(StoragePrecision precision)
    {
        var random = new Random(23);
        const int Rows = 3000;
        float[] vectors = new float[Rows * Dimension];
        for (int row = 0; row < Rows; row++)
        {
            // Spreads from 0.001 to 0.1 so the distances span four orders of magnitude.
            double spread = Math.Pow(10, -3 + (2 * random.NextDouble()));
            for (int i = 0; i < Dimension; i++)
            {
                vectors[(row * Dimension) + i] = (float)(1000 + (spread * VectorFixtures.NextGaussian(random)));
            }
        }

        using var matrix = new ConceptMatrix(Dimension, CPU, Metric.L2, precision, initialCapacity: 64);
        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] queries = new float[QueryCount * Dimension];
        for (int i = 0; i < queries.Length; i++)
        {
            queries[i] = (float)(1000 + (0.01 * VectorFixtures.NextGaussian(random)));
        }

        vectors.AsSpan(5 * Dimension, Dimension).CopyTo(queries);

        ISearchKernel[] kernels = EveryKernel();
        // Each query excludes its nearest row, so one given another's exclusions answers wrongly.
        // Query 1 and rows 0–2 lie near the origin, so its top 1 is proven in the expanded form
        // while the other queries are rescanned by distance.
        vectors.AsSpan(0, 3 * Dimension).Clear();
        for (int i = 0; i < 3 * Dimension; i += Dimension + 1)
        {
            vectors[i] = 0.1f * (i + 1);
        }

        matrix.SetRows([0, 1, 2], vectors.AsSpan(0, 3 * Dimension).ToArray());
        queries.AsSpan(Dimension, Dimension).Clear();
        var exclude = new SearchFilter([.. Enumerable.Range(0, QueryCount).Select(j =>
            (IReadOnlyCollection<int>)[VectorFixtures.BruteForce(matrix, vectors, queries.AsSpan(j * Dimension, Dimension), _ => true)[0].Row])]);
        foreach (ISearchKernel kernel in kernels)
        {
            foreach ((SearchFilter filter, string name) in new[] { (SearchFilter.None, "plain"), (exclude, "exclude") })
            {
                foreach (int k in new[] { 1, 10, 100 })
                {
                    SearchHits[] hits = kernel.Search(matrix, queries, k, filter);
                    for (int j = 0; j < QueryCount; j++)
                    {
                        IReadOnlySet<int> excluded = filter.ExcludedFor(j);
                        var expected = VectorFixtures.BruteForce(matrix, vectors, queries.AsSpan(j * Dimension, Dimension), row => !excluded.Contains(row));
                        // Near the cluster scores are −‖w − q‖² of a few 10⁻⁴ to 10⁻¹, where float32
                        // rounding is below 10⁻⁸; query 1's reach ‖w‖² ≈ 4·10⁷, rounded relatively.
                        double tolerance = 1e-6 * Math.Max(0.1, Math.Abs(expected[Math.Min(k, expected.Length) - 1].Score));
                        VectorFixtures.AssertExactTopK(hits[j], expected, k, tolerance, $"{kernel.Name} {name} k={k} query {j}");
                    }
                }
            }
        }
    }

    // Below float32's normal range each rounding may lose 2⁻¹⁵⁰ however small the value, which no
    // relative bound covers: with rows this close to the zero query the float32 GEMM and the device
    // kernel proved a cut that left out the nearest row (its squares all round to 0; its expanded
    // score does not), so they need an absolute allowance on top.
    [Fact]
    public void The_l2_proof_holds_for_vectors_below_float32s_normal_range()
    {
        const int D = 16;
        float hidden = (float)(1.4 * Math.Pow(2, -76)), near = (float)Math.Pow(2, -74.5), filler = (float)Math.Pow(2, -74);
        float[][] rows =
        [
            Enumerable.Repeat(hidden, D).ToArray(),
            [near, .. new float[D - 1]],
            .. Enumerable.Range(0, 64).Select(_ => (float[])[filler, .. new float[D - 1]]),
        ];
        using var matrix = new ConceptMatrix(D, CPU, Metric.L2, StoragePrecision.Float32, initialCapacity: 64);
        matrix.SetRows(Enumerable.Range(0, rows.Length).ToArray(), [.. rows.SelectMany(row => row)]);
        float[] query = new float[D];

        Assert.Equal(0, new ScanKernel().Search(matrix, query, 1)[0].Rows[0]);
        Assert.Equal(0, new ChunkedGemmKernel(coarseType: CoarsePrecision.Float32).Search(matrix, query, 1)[0].Rows[0]);
        Assert.Equal(0, new TorchTopKKernel().Search(matrix, query, 1)[0].Rows[0]);
    }

    // Rows far from the origin defeat the device kernel's proof of its l2 cut, so each query is
    // searched again by distance. A chunk of that pass holds queries × rows × d differences and at
    // least the rows a query keeps, and it took every query at once whatever its budget: 256
    // queries for 10,000 hits at d = 4,096 were 42 GB against 256 MB. It takes as many queries at a
    // time as the budget leaves room for, and stays exact.
    [Fact]
    public void The_device_kernels_search_by_distance_takes_queries_in_groups_within_its_budget()
    {
        const int D = 16, Rows = 600, Queries = 8, K = 100;
        var random = new Random(11);
        float[] reference = [.. Enumerable.Range(0, Rows * D).Select(_ => 1000f + random.NextSingle())];
        using var matrix = new ConceptMatrix(D, CPU, Metric.L2, StoragePrecision.Float32, initialCapacity: Rows);
        matrix.SetRows([.. Enumerable.Range(0, Rows)], reference);
        float[] queries = [.. Enumerable.Range(0, Queries * D).Select(_ => 1000f + random.NextSingle())];
        // 101 rows kept × 16 dimensions: two queries at a time within 4,096 elements.
        var kernel = new TorchTopKKernel(maxScoreElements: 4096);

        SearchHits[] hits = kernel.Search(matrix, queries, K);

        Assert.Equal(Queries, kernel.FallbackQueries);
        for (int j = 0; j < Queries; j++)
        {
            VectorFixtures.AssertExactTopK(hits[j], VectorFixtures.BruteForce(matrix, reference, queries.AsSpan(j * D, D), _ => true), K, 1e-2, $"query {j}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_kernel_matches_float64_brute_force_through_deletes_and_growth(Metric metric, StoragePrecision precision)
    {
        var random = new Random((17 * (int)metric) + (int)precision);
        // A tiny score budget forces many chunks, so the running candidate merge is exercised.
        ChunkedGemmKernel[] gemms = Enum.GetValues<CoarsePrecision>()
            .Where(p => p is not (CoarsePrecision.Auto or CoarsePrecision.Int8) || Int8CoarseScorer.IsSupported)
            .Select(p => new ChunkedGemmKernel(coarseType: p, maxScoreElements: 4096))
            .ToArray();
        ISearchKernel[] kernels = [new ScanKernel(), .. gemms, new TorchTopKKernel(maxScoreElements: 4096)];

        using var matrix = new ConceptMatrix(Dimension, CPU, metric, precision, initialCapacity: 64);
        float[] reference = new float[4001 * Dimension];
        void Write(int[] rows)
        {
            float[] vectors = VectorFixtures.Gaussian(random, rows.Length, Dimension);
            matrix.SetRows(rows, vectors);
            for (int i = 0; i < rows.Length; i++)
            {
                vectors.AsSpan(i * Dimension, Dimension).CopyTo(reference.AsSpan(rows[i] * Dimension));
            }
        }

        Write(Enumerable.Range(0, 600).ToArray());
        CheckAll(kernels, matrix, reference, random, "initial");

        for (int row = 0; row < 600; row += 7)
        {
            matrix.Remove(row);
        }

        Write(Enumerable.Range(0, 600).Where(r => r % 21 == 0).ToArray());
        Write(Enumerable.Range(600, 1000).ToArray());
        CheckAll(kernels, matrix, reference, random, "after deletes, overwrites and growth");

        // A row far past the end grows W over a gap of never-written rows, which must read as
        // absent (growth leaves spare rows uninitialized until a write reaches them).
        Write([4000]);
        Assert.All(matrix.GetRows(Enumerable.Range(1600, 2400).ToArray()), x => Assert.Equal(0f, x));
        CheckAll(kernels, matrix, reference, random, "after a write past a gap");

        // The coarse pass must do the work: falling back to the scan for most queries would pass
        // the exactness checks while leaving the GEMM path untested. 3 stages × 3 filters × 3 k.
        const long searched = 3 * 3 * 3 * QueryCount;
        Assert.All(gemms, gemm => Assert.True(gemm.FallbackQueries < searched / 4, $"{gemm.Name} fell back for {gemm.FallbackQueries} of {searched} queries"));
    }

    // Hundreds of copies of one row tie exactly for the first places. Results order ties by row, so
    // every kernel must return the lowest rows of the run, whichever of the tied rows its top-k
    // pass happens to keep (a device topk keeps an arbitrary subset of a tie at its cut).
    [Theory]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.Dot)]
    [InlineData(Metric.L2)]
    public void Runs_of_tied_rows_give_the_lowest_rows_in_every_kernel(Metric metric)
    {
        const int Rows = 4000;
        var random = new Random(29 + (int)metric);
        using var matrix = new ConceptMatrix(Dimension, CPU, metric, StoragePrecision.Float32, initialCapacity: 64);
        float[] vectors = VectorFixtures.Gaussian(random, Rows, Dimension);
        for (int row = 8; row < Rows; row += 8)
        {
            vectors.AsSpan(0, Dimension).CopyTo(vectors.AsSpan(row * Dimension, Dimension));
        }

        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), vectors);
        float[] query = vectors[..Dimension];
        foreach (int k in new[] { 1, 10, 300 })
        {
            int[] expected = [.. Enumerable.Range(0, k).Select(i => i * 8)];
            Assert.All(EveryKernel(), kernel => Assert.True(
                expected.SequenceEqual(kernel.Search(matrix, query, k)[0].Rows),
                $"{kernel.Name}, k = {k}: {string.Join(' ', kernel.Search(matrix, query, k)[0].Rows.Take(12))} …"));
        }
    }

    /// <summary>The scan, the GEMM with every coarse type this CPU runs, and the device kernel (here
    /// on the CPU), with score budgets small enough to force many chunks.</summary>
    private static ISearchKernel[] EveryKernel() =>
    [
        new ScanKernel(),
        .. Enum.GetValues<CoarsePrecision>()
            .Where(p => p is not (CoarsePrecision.Auto or CoarsePrecision.Int8) || Int8CoarseScorer.IsSupported)
            .Select(p => new ChunkedGemmKernel(coarseType: p, maxScoreElements: 4096)),
        new TorchTopKKernel(maxScoreElements: 4096),
    ];

    private static void CheckAll(ISearchKernel[] kernels, ConceptMatrix matrix, float[] reference, Random random, string stage)
    {
        float[] queries = VectorFixtures.Gaussian(random, QueryCount, Dimension);
        // A few queries are stored rows, whose own row must come first unless excluded.
        int[] live = Enumerable.Range(0, matrix.RowLimit).Where(matrix.IsLive).ToArray();
        for (int j = 0; j < 4; j++)
        {
            reference.AsSpan(live[random.Next(live.Length)] * Dimension, Dimension).CopyTo(queries.AsSpan(j * Dimension));
        }

        var exclude = Enumerable.Range(0, QueryCount)
            .Select(j => (IReadOnlyCollection<int>)(j % 3 == 0 ? Enumerable.Range(0, 5).Select(_ => live[random.Next(live.Length)]).ToHashSet() : []))
            .ToArray();
        RowFilter allowed = RowFilter.FromPredicate(matrix.RowLimit, row => row % 2 == 1 || row % 5 == 0);
        double tolerance = matrix.Metric == Metric.Cosine ? 1e-5 : 1e-3;

        foreach ((SearchFilter filter, string name) in new[] { (SearchFilter.None, "plain"), (new SearchFilter(exclude), "exclude"), (new SearchFilter(exclude, allowed), "exclude+filter") })
        {
            var expected = Enumerable.Range(0, QueryCount).Select(j =>
            {
                IReadOnlySet<int> excluded = filter.Exclude is null ? new HashSet<int>() : (IReadOnlySet<int>)filter.Exclude[j];
                return VectorFixtures.BruteForce(matrix, reference, queries.AsSpan(j * Dimension, Dimension),
                    row => !excluded.Contains(row) && (filter.Allowed?.Contains(row) ?? true));
            }).ToArray();
            foreach (ISearchKernel kernel in kernels)
            {
                foreach (int k in new[] { 1, 10, 100 })
                {
                    SearchHits[] hits = kernel.Search(matrix, queries, k, filter);
                    Assert.Equal(QueryCount, hits.Length);
                    for (int j = 0; j < QueryCount; j++)
                    {
                        VectorFixtures.AssertExactTopK(hits[j], expected[j], k, tolerance, $"{kernel.Name} {stage} k={k} {name} query {j}");
                    }
                }
            }
        }
    }
}
