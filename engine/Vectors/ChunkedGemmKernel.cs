using System.Buffers;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// CPU kernel for large batches: GEMM of the queries against W in row chunks (in a low-precision
/// element type where the CPU runs that faster), a fused C# pass over each chunk's products that
/// keeps a running list of candidates per query, then an exact float32 re-rank of the candidates
/// against W with the same scoring code as <see cref="ScanKernel"/>. Chunked so the product matrix
/// stays bounded; selection in C# because torch's topk over the products costs more than the GEMM.
/// </summary>
/// <remarks>
/// <para>Exactness is checked, not hoped for. The coarse score of a row differs from its exact
/// score by at most <c>e = c·‖q̃‖·max_r(‖w_r‖·|scale_r|) + slack</c>, where <c>c</c> covers rounding
/// unit-normalized inputs and the product to the element type (3 unit roundoffs; none in float32)
/// and float32 accumulation. Every row outside a query's candidate list has a coarse score ≤ the
/// list's last score <c>s_m</c>, so if <c>s_m + e</c> (plus, for l2, the rounding of the distance
/// the re-rank sums: <see cref="QueryBatch.Ceiling"/>) is below the k-th canonical score, no outside
/// row can enter the top k. Far from the origin l2's coarse bound grows with the norms while the
/// distances do not, so such queries fail the check and the scan answers them. A query that fails the check (near-ties at the cut, or a restrictive filter
/// or many exclusions eating the candidates) is answered by the exact scan instead;
/// <see cref="FallbackQueries"/> counts them.</para>
/// <para>Coarse arithmetic (<see cref="CoarseType"/>): by default int8 where the CPU has AVX-512
/// (<see cref="Int8CoarseScorer"/>, which quantizes each chunk on the fly, has its own, per-query
/// bound, and multiplies with AVX-VNNI where the CPU has that too); otherwise a libtorch GEMM on the
/// matrix's search copy when its precision is float16 or bfloat16, or in the configured type for a
/// float32 matrix (float32 reads W as is; the others normalize and convert each chunk on the fly).
/// The kernel bench's --coarse measures each.</para>
/// </remarks>
public sealed class ChunkedGemmKernel : ISearchKernel
{
    private readonly ScanKernel _fallback;
    private readonly long _maxScoreElements;
    private readonly long _maxCandidateBytes;
    private readonly int _parallelism;
    private long _fallbackQueries;

    /// <summary>Creates the kernel.</summary>
    /// <param name="fallback">The exact scan used for queries whose candidates cannot prove exactness.</param>
    /// <param name="coarseType">Arithmetic of the coarse pass; <see cref="CoarsePrecision.Int8"/> throws
    /// <see cref="PlatformNotSupportedException"/> on a CPU without AVX-512 (F and BW).</param>
    /// <param name="maxScoreElements">Bound on the per-chunk product matrix (queries × chunk rows) of the libtorch GEMM, to bound memory.</param>
    /// <param name="maxDegreeOfParallelism">Threads for the coarse pass, selection and re-rank (0: one per core).</param>
    /// <param name="maxCandidateBytes">Bound on the candidate lists a pass keeps (each query keeps up to
    /// 2m per thread); a batch that would need more is searched in parts, each reading W once.</param>
    public ChunkedGemmKernel(
        ScanKernel? fallback = null, CoarsePrecision coarseType = CoarsePrecision.Auto, long maxScoreElements = 1L << 23, int maxDegreeOfParallelism = 0,
        long maxCandidateBytes = 1L << 28)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxScoreElements, 1024L);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCandidateBytes, 1L << 16);
        ArgumentOutOfRangeException.ThrowIfNegative(maxDegreeOfParallelism);
        if (coarseType == CoarsePrecision.Int8 && !Int8CoarseScorer.IsSupported)
        {
            throw new PlatformNotSupportedException("coarse precision int8 needs a CPU with AVX-512 (F and BW); use auto or float32");
        }

        _fallback = fallback ?? new ScanKernel(maxDegreeOfParallelism);
        _parallelism = maxDegreeOfParallelism == 0 ? Environment.ProcessorCount : maxDegreeOfParallelism;
        CoarseType = coarseType == CoarsePrecision.Auto && Int8CoarseScorer.IsSupported ? CoarsePrecision.Int8 : coarseType;
        _maxScoreElements = maxScoreElements;
        _maxCandidateBytes = maxCandidateBytes;
    }

    /// <inheritdoc />
    public string Name => "gemm-" + CoarseType.ToString().ToLowerInvariant();

    /// <summary>The coarse arithmetic: as configured, with <see cref="CoarsePrecision.Auto"/> resolved to
    /// int8 where the CPU has it (and left as auto otherwise: the matrix's search copy, else float32).</summary>
    public CoarsePrecision CoarseType { get; }

    /// <summary>Queries answered by the exact scan because the re-rank could not prove exactness.</summary>
    public long FallbackQueries => Interlocked.Read(ref _fallbackQueries);

    /// <inheritdoc />
    public bool Supports(ConceptMatrix matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return matrix.IsHostResident;
    }

    /// <summary>How many candidates a query keeps for the re-rank: enough above k that the cut sits
    /// well below the k-th score (k·4 or k + 64, whichever is larger), plus room for the rows it
    /// excludes.</summary>
    internal static int CandidateCount(int k, int excluded, int rowLimit) =>
        (int)Math.Min(rowLimit, Math.Max(4L * k, k + 64L) + excluded);

    /// <inheritdoc />
    public SearchHits[] Search(ConceptMatrix matrix, ReadOnlySpan<float> queries, int k, SearchFilter? filter = null)
    {
        KernelArguments.Check(matrix, queries, k);
        if (!Supports(matrix))
        {
            throw new InvalidOperationException("the chunked GEMM kernel needs W in host memory");
        }

        filter ??= SearchFilter.None;
        int m = CandidateCount(k, filter.MaxExcluded, matrix.RowLimit);
        if (m == 0)
        {
            // No rows at all: nothing for the coarse pass to rank.
            return _fallback.Search(matrix, queries, k, filter);
        }

        // Each thread keeps up to 2m (m + 1024 past 1024) candidates of 8 bytes per query, and the
        // merge m more: 10 000 queries at k = 1 000 would hold 6.4 GB on 16 cores.
        int d = matrix.Dimension;
        int count = queries.Length / d;
        long bytesPerQuery = 8L * ((_parallelism * (long)(m + Math.Min(m, 1024))) + m);
        int perPass = (int)Math.Clamp(_maxCandidateBytes / bytesPerQuery, 1, count);
        if (perPass < count)
        {
            var parts = new SearchHits[count];
            for (int start = 0; start < count; start += perPass)
            {
                int n = Math.Min(perPass, count - start);
                SearchFilter part = filter with { Exclude = filter.Exclude is { } excluded ? [.. Enumerable.Range(start, n).Select(j => j < excluded.Count ? excluded[j] : [])] : null };
                Search(matrix, queries.Slice(start * d, n * d), k, part).CopyTo(parts, start);
            }

            return parts;
        }

        QueryBatch batch = QueryBatch.Prepare(queries, d, matrix.Metric);

        (TopKCollector[] candidates, float[] bounds) = CoarseType == CoarsePrecision.Int8
            ? Int8CoarseScorer.Candidates(matrix, batch, m, filter.Allowed, _parallelism)
            : CoarseCandidates(matrix, batch, m, filter.Allowed);

        var hits = new SearchHits[batch.Count];
        var unproven = new bool[batch.Count];
        Parallel.For(0, batch.Count, new ParallelOptions { MaxDegreeOfParallelism = _parallelism }, j =>
        {
            (hits[j], unproven[j]) = Rerank(matrix, batch, j, candidates[j], bounds[j], k, filter);
        });

        int[] fallback = Enumerable.Range(0, batch.Count).Where(j => unproven[j]).ToArray();
        if (fallback.Length > 0)
        {
            Interlocked.Add(ref _fallbackQueries, fallback.Length);
            SearchHits[] exact = _fallback.Scan(matrix, batch, fallback, k, filter);
            for (int i = 0; i < fallback.Length; i++)
            {
                hits[fallback[i]] = exact[i];
            }
        }

        return hits;
    }

    /// <summary>Runs the chunked libtorch GEMM and keeps each query's m best coarse scores. Returns
    /// the candidate collectors and each query's error bound (that of the worst query).</summary>
    private (TopKCollector[] Candidates, float[] Bounds) CoarseCandidates(ConceptMatrix matrix, QueryBatch batch, int m, RowFilter? allowed)
    {
        int rowLimit = matrix.RowLimit;
        // Per-row factors: coarse score = g·(qScale·rowScale) + (rowOffset − qOffset), where g is the
        // GEMM output. Free and filtered rows get −∞ so they are never candidates.
        // Rented: two arrays of n floats per batch would otherwise be large-object garbage that the
        // GC keeps committed, so resident memory would climb with every batch.
        float[] rowScale = ArrayPool<float>.Shared.Rent(rowLimit);
        float[] rowOffset = ArrayPool<float>.Shared.Rent(rowLimit);
        try
        {
            return CoarseCandidates(matrix, batch, m, allowed, rowScale, rowOffset);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rowScale);
            ArrayPool<float>.Shared.Return(rowOffset);
        }
    }

    private (TopKCollector[] Candidates, float[] Bounds) CoarseCandidates(
        ConceptMatrix matrix, QueryBatch batch, int m, RowFilter? allowed, float[] rowScale, float[] rowOffset)
    {
        int count = batch.Count;
        int d = matrix.Dimension;
        int rowLimit = matrix.RowLimit;
        int chunk = (int)Math.Max(1024, Math.Min(_maxScoreElements / count, (1L << 22) / d)) & ~15;
        // Auto takes the matrix's search copy where it has one; a type chosen is kept (it took the
        // copy's type over float32 before, which measured the wrong arithmetic).
        ScalarType coarse = CoarseType == CoarsePrecision.Auto ? matrix.SearchCopy?.dtype ?? ScalarType.Float32 : ElementType(CoarseType);
        Tensor? searchCopy = matrix.SearchCopy?.dtype == coarse ? matrix.SearchCopy : null;
        bool unitRows = coarse != ScalarType.Float32;
        float maxProductScale = 0, maxOffset = 0;
        ReadOnlySpan<float> norms = matrix.Norms;
        ReadOnlySpan<float> scales = matrix.Scales;
        ReadOnlySpan<float> offsets = matrix.Offsets;
        for (int row = 0; row < rowLimit; row++)
        {
            bool eligible = matrix.IsLive(row) && (allowed is null || allowed.Contains(row));
            rowScale[row] = unitRows ? norms[row] * scales[row] : scales[row];
            rowOffset[row] = eligible ? offsets[row] : float.NegativeInfinity;
            if (eligible)
            {
                maxProductScale = Math.Max(maxProductScale, norms[row] * Math.Abs(scales[row]));
                maxOffset = Math.Max(maxOffset, Math.Abs(offsets[row]));
            }
        }

        var queryScale = new float[count];
        for (int j = 0; j < count; j++)
        {
            queryScale[j] = unitRows ? batch.Norms[j] : 1f;
        }

        var candidates = new TopKCollector[count];
        for (int j = 0; j < count; j++)
        {
            candidates[j] = new TopKCollector(m);
        }

        using (NewDisposeScope())
        {
            Tensor queries = tensor(batch.Vectors, [count, d]);
            // Unit queries and rows in low precision: no overflow in float16, uniform relative error in bfloat16.
            Tensor left = unitRows ? (queries / tensor(batch.Norms).unsqueeze(1).clamp_min(TorchScalars.FloatEpsilon)).to(coarse) : queries;
            for (int start = 0; start < rowLimit; start += chunk)
            {
                int rows = Math.Min(chunk, rowLimit - start);
                using DisposeScope step = NewDisposeScope();
                Tensor block = !unitRows ? matrix.Weights.narrow(0, start, rows)
                    : searchCopy?.narrow(0, start, rows)
                    ?? (matrix.Weights.narrow(0, start, rows) / matrix.NormsOnDevice.narrow(0, start, rows).clamp_min(TorchScalars.FloatEpsilon).unsqueeze(1)).to(coarse);
                // mm (not matmul): a shape mismatch throws instead of killing the process.
                Tensor products = left.mm(block.t());
                if (products.dtype != ScalarType.Float32)
                {
                    products = products.to(ScalarType.Float32);
                }

                Select(products.contiguous(), start, rows, queryScale, batch.Offsets, rowScale, rowOffset, candidates);
            }
        }

        float maxQuery = batch.Norms.Max();
        float maxQueryOffset = batch.Offsets.Max(Math.Abs);
        float bound = ErrorBound(coarse, d, maxQuery * maxProductScale, maxOffset + maxQueryOffset);
        return (candidates, Enumerable.Repeat(bound, count).ToArray());
    }

    /// <summary>Offers every row of one chunk's products to each query's candidates, turning products
    /// into coarse scores on the fly. One pass over the chunk with a per-query threshold, instead of
    /// torch's topk, which costs more than the GEMM itself on a CPU.</summary>
    private unsafe void Select(
        Tensor products, int start, int rows, float[] queryScale, float[] queryOffset, float[] rowScale, float[] rowOffset, TopKCollector[] candidates)
    {
        float* basePointer = TensorMemory.Float32Pointer(products);
        nint address = (nint)basePointer;
        int count = candidates.Length;
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _parallelism }, j =>
        {
            float* g = (float*)address + ((long)j * rows);
            TopKCollector top = candidates[j];
            float threshold = top.Threshold;
            float scale = queryScale[j];
            float shift = queryOffset[j];
            Span<float> lanes = stackalloc float[Vector512<float>.Count];
            fixed (float* a = &rowScale[start], b = &rowOffset[start])
            {
                int r = 0;
                var scaleVector = Vector512.Create(scale);
                var shiftVector = Vector512.Create(shift);
                for (; r + Vector512<float>.Count <= rows; r += Vector512<float>.Count)
                {
                    Vector512<float> score = (Vector512.Load(g + r) * (scaleVector * Vector512.Load(a + r))) + (Vector512.Load(b + r) - shiftVector);
                    if (Vector512.GreaterThanOrEqualAny(score, Vector512.Create(threshold)))
                    {
                        score.CopyTo(lanes);
                        for (int lane = 0; lane < lanes.Length; lane++)
                        {
                            threshold = top.Offer(lanes[lane], start + r + lane, threshold);
                        }
                    }
                }

                for (; r < rows; r++)
                {
                    threshold = top.Offer((g[r] * (scale * a[r])) + (b[r] - shift), start + r, threshold);
                }
            }
        });
    }

    private static ScalarType ElementType(CoarsePrecision precision) => precision switch
    {
        CoarsePrecision.Float16 => ScalarType.Float16,
        CoarsePrecision.BFloat16 => ScalarType.BFloat16,
        _ => ScalarType.Float32,
    };

    /// <summary>The most a coarse score can differ from the exact one (and from a canonical product
    /// score). In float16/bfloat16,
    /// rounding q̂ and ŵ and the product to the element type costs 3 unit roundoffs of ‖q̂‖‖ŵ‖ = 1
    /// (Cauchy–Schwarz), and float16's subnormals add up to 2⁻²⁵ per element (√d·2⁻²⁵ over a unit
    /// vector). In every type, float32 accumulation and the canonical score's own rounding add
    /// d·2⁻²³, and the float32 scale/offset arithmetic 2⁻²¹ of the magnitudes. Doubled for margin.
    /// Roundings below float32's normal range lose up to 2⁻¹⁵⁰ each whatever the magnitudes, so
    /// 2d + 4 of the smallest float are added on top.</summary>
    internal static float ErrorBound(ScalarType coarse, int d, float productScale, float offsetScale)
    {
        double unitRoundoff = coarse switch
        {
            ScalarType.Float16 => Math.Pow(2, -11),
            ScalarType.BFloat16 => Math.Pow(2, -8),
            _ => 0,
        };
        double subnormal = coarse == ScalarType.Float16 ? Math.Sqrt(d) * Math.Pow(2, -25) : 0;
        double relative = (3 * unitRoundoff) + subnormal + (d * Math.Pow(2, -23)) + Math.Pow(2, -21);
        return (float)((2 * ((relative * productScale) + (Math.Pow(2, -21) * offsetScale))) + (((2.0 * d) + 4) * float.Epsilon));
    }

    private static unsafe (SearchHits Hits, bool Unproven) Rerank(
        ConceptMatrix matrix, QueryBatch batch, int query, TopKCollector candidates, float bound, int k, SearchFilter filter)
    {
        int d = matrix.Dimension;
        IReadOnlySet<int> excluded = filter.ExcludedFor(query);
        var top = new TopKCollector(k);
        float* w = matrix.HostPointer;
        ReadOnlySpan<float> scales = matrix.Scales;
        ReadOnlySpan<float> offsets = matrix.Offsets;
        float queryOffset = batch.Offsets[query];
        fixed (float* q = batch.Query(query))
        {
            foreach (int row in candidates.Rows)
            {
                if (!excluded.Contains(row))
                {
                    float measure = SimdDot.Measure(w + ((long)row * d), q, d, batch.ByDistance);
                    top.Add(QueryBatch.Score(measure, batch.ByDistance, scales[row], offsets[row], queryOffset), row);
                }
            }
        }

        // Rows never kept or evicted scored at most the candidates' threshold (it only rises). While
        // the list is not full, every eligible row is in it. Strictly below: an outside row tying
        // the k-th score could otherwise win on row id.
        // An infinite bound: the coarse pass could not bound this query's scores at all.
        float cutoff = candidates.Count < candidates.K ? float.NegativeInfinity : candidates.Threshold;
        bool proven = float.IsFinite(bound) && (float.IsNegativeInfinity(cutoff) || (top.Count == k && batch.Ceiling(cutoff + bound) < top.Threshold));
        return (top.ToHits(), !proven);
    }
}
