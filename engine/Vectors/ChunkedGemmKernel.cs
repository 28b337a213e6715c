using AssocDB.Engine.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// CPU kernel for large batches: low-precision GEMM of the queries against W in row chunks, a
/// per-chunk topk merged into a running candidate list per query, then an exact float32 re-rank of
/// the candidates against W with the same scoring code as <see cref="ScanKernel"/>. Low precision
/// because the CPU's bfloat16 GEMM peaks several times higher than float32 (measured ~5× here), and
/// chunked so the score matrix stays bounded.
/// </summary>
/// <remarks>
/// <para>Exactness is checked, not hoped for. Normalized low-precision rows and queries make the
/// coarse score of a row differ from its exact score by at most
/// <c>e = c·‖q̃‖·max_r(‖w_r‖·scale_r) + slack</c>, where <c>c</c> covers rounding the inputs and the
/// product to the element type (3 unit roundoffs) and float32 accumulation. Every row outside a
/// query's candidate list has a coarse score ≤ the list's last score <c>s_m</c>, so if
/// <c>s_m + e</c> is below the k-th exact score, no outside row can enter the top k. A query that
/// fails the check (near-ties at the cut, or a restrictive filter or many exclusions eating the
/// candidates) is answered by the exact scan instead; <see cref="FallbackQueries"/> counts them.</para>
/// <para>Coarse element type: the matrix's search copy when its precision is float16 or bfloat16;
/// for a float32 matrix, chunks are normalized and converted on the fly to
/// <see cref="CoarseType"/>.</para>
/// </remarks>
public sealed class ChunkedGemmKernel : ISearchKernel
{
    private readonly ScanKernel _fallback;
    private readonly long _maxScoreElements;
    private long _fallbackQueries;

    /// <summary>Creates the kernel.</summary>
    /// <param name="fallback">The exact scan used for queries whose candidates cannot prove exactness.</param>
    /// <param name="coarseType">Element type of the coarse GEMM for float32 matrices (bfloat16 or float16).</param>
    /// <param name="maxScoreElements">Bound on the per-chunk score matrix (queries × chunk rows), to bound memory.</param>
    public ChunkedGemmKernel(ScanKernel? fallback = null, StoragePrecision coarseType = StoragePrecision.BFloat16, long maxScoreElements = 1L << 23)
    {
        if (coarseType == StoragePrecision.Float32)
        {
            throw new ArgumentOutOfRangeException(nameof(coarseType), "the coarse pass must be float16 or bfloat16");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(maxScoreElements, 1024L);
        _fallback = fallback ?? new ScanKernel();
        CoarseType = coarseType;
        _maxScoreElements = maxScoreElements;
    }

    /// <inheritdoc />
    public string Name => "gemm-" + CoarseType.ToString().ToLowerInvariant();

    /// <summary>The coarse element type used for float32 matrices.</summary>
    public StoragePrecision CoarseType { get; }

    /// <summary>Queries answered by the exact scan because the re-rank could not prove exactness.</summary>
    public long FallbackQueries => Interlocked.Read(ref _fallbackQueries);

    /// <inheritdoc />
    public bool Supports(ConceptMatrix matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return matrix.IsHostResident;
    }

    /// <summary>How many candidates a query keeps for the re-rank: enough above k that the cut sits
    /// well below the k-th score (the brief's k·4 or k + 64, whichever is larger), plus room for the
    /// rows it excludes.</summary>
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
        QueryBatch batch = QueryBatch.Prepare(queries, matrix.Dimension, matrix.Metric);
        int m = CandidateCount(k, filter.MaxExcluded, matrix.RowLimit);
        (int[] candidates, float[] cutoffs, float bound) = CoarseCandidates(matrix, batch, m, filter.Allowed);

        var hits = new SearchHits[batch.Count];
        var unproven = new bool[batch.Count];
        Parallel.For(0, batch.Count, j =>
        {
            (hits[j], unproven[j]) = Rerank(matrix, batch, j, candidates.AsSpan(j * m, m), cutoffs[j], bound, k, filter);
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

    /// <summary>Runs the chunked coarse GEMM. Returns the m candidate rows per query (row-major
    /// [count, m]), each query's cut (its m-th coarse score, −∞ when every row is a candidate) and the
    /// error bound e for the worst query.</summary>
    private (int[] Candidates, float[] Cutoffs, float Bound) CoarseCandidates(ConceptMatrix matrix, QueryBatch batch, int m, RowFilter? allowed)
    {
        int count = batch.Count;
        int d = matrix.Dimension;
        int rowLimit = matrix.RowLimit;
        int chunk = (int)Math.Clamp(_maxScoreElements / count, m, Math.Max(m, (1L << 22) / d));
        ScalarType coarse = matrix.SearchCopy?.dtype ?? (CoarseType == StoragePrecision.Float16 ? ScalarType.Float16 : ScalarType.BFloat16);

        using DisposeScope scope = NewDisposeScope();
        Tensor queries = tensor(batch.Vectors, [count, d]);
        Tensor queryNorms = tensor(batch.Norms).unsqueeze(1);
        Tensor queryOffsets = tensor(batch.Offsets).unsqueeze(1);
        // Unit queries in the element type: no overflow in float16, relative error uniform in bfloat16.
        Tensor unitQueries = (queries / queryNorms.clamp_min(float.Epsilon)).to(coarse);
        Tensor norms = matrix.NormsOnDevice.narrow(0, 0, rowLimit);
        // coarse score = (ŵ·q̂)·‖q̃‖·(‖w‖·scale) + offset − qOffset, the canonical score up to rounding.
        Tensor rowScale = norms * matrix.ScalesOnDevice.narrow(0, 0, rowLimit);
        Tensor offsets = matrix.OffsetsOnDevice.narrow(0, 0, rowLimit);
        if (allowed is not null)
        {
            offsets = offsets.masked_fill(tensor(allowed.ToMask(rowLimit)).logical_not(), float.NegativeInfinity);
        }

        Tensor? bestScores = null;
        Tensor? bestRows = null;
        for (int start = 0; start < rowLimit; start += chunk)
        {
            int rows = Math.Min(chunk, rowLimit - start);
            using DisposeScope step = NewDisposeScope();
            Tensor block = matrix.SearchCopy?.narrow(0, start, rows)
                ?? (matrix.Weights.narrow(0, start, rows) / norms.narrow(0, start, rows).clamp_min(float.Epsilon).unsqueeze(1)).to(coarse);
            Tensor scores = unitQueries.matmul(block.t()).to(ScalarType.Float32)
                .mul_(queryNorms).mul_(rowScale.narrow(0, start, rows)).add_(offsets.narrow(0, start, rows)).sub_(queryOffsets);
            (Tensor values, Tensor indexes) = scores.topk(Math.Min(m, rows), dim: 1);
            indexes = indexes.add_(start);
            if (bestScores is not null && bestRows is not null)
            {
                values = cat([bestScores, values], 1);
                Tensor positions;
                (values, positions) = values.topk(Math.Min(m, (int)values.shape[1]), dim: 1);
                indexes = cat([bestRows, indexes], 1).gather(1, positions);
            }

            bestScores = values.MoveToOuterDisposeScope();
            bestRows = indexes.MoveToOuterDisposeScope();
        }

        // m ≤ rowLimit, so after the loop every query holds exactly m candidates.
        int[] candidates = bestRows!.to(ScalarType.Int32).data<int>().ToArray();
        float[] cutoffs = new float[count];
        if (m < rowLimit)
        {
            bestScores!.select(1, m - 1).data<float>().CopyTo(cutoffs);
        }
        else
        {
            Array.Fill(cutoffs, float.NegativeInfinity);
        }

        float maxRowScale = rowScale.abs().max().item<float>();
        float maxOffset = matrix.OffsetsOnDevice.narrow(0, 0, rowLimit).nan_to_num(0, 0, 0).abs().max().item<float>();
        float maxQuery = batch.Norms.Max();
        float maxQueryOffset = batch.Offsets.Max(Math.Abs);
        return (candidates, cutoffs, ErrorBound(coarse, d, maxQuery * maxRowScale, maxOffset + maxQueryOffset));
    }

    /// <summary>The most a coarse score can differ from the canonical one. Rounding q̂ and ŵ and the
    /// product to the element type costs 3 unit roundoffs of ‖q̂‖‖ŵ‖ = 1 (Cauchy–Schwarz); float16's
    /// subnormals add up to 2⁻²⁵ per element (√d·2⁻²⁵ over a unit vector); float32 accumulation and
    /// the canonical score's own rounding add d·2⁻²³; the float32 scale/offset arithmetic adds
    /// 2⁻²¹ of the offsets' magnitude. All of it is doubled for margin.</summary>
    private static float ErrorBound(ScalarType coarse, int d, float productScale, float offsetScale)
    {
        double unitRoundoff = coarse == ScalarType.Float16 ? Math.Pow(2, -11) : Math.Pow(2, -8);
        double subnormal = coarse == ScalarType.Float16 ? Math.Sqrt(d) * Math.Pow(2, -25) : 0;
        double relative = (3 * unitRoundoff) + subnormal + (d * Math.Pow(2, -23)) + Math.Pow(2, -21);
        return (float)(2 * ((relative * productScale) + (Math.Pow(2, -21) * offsetScale)));
    }

    private static unsafe (SearchHits Hits, bool Unproven) Rerank(
        ConceptMatrix matrix, QueryBatch batch, int query, ReadOnlySpan<int> candidates, float cutoff, float bound, int k, SearchFilter filter)
    {
        int d = matrix.Dimension;
        IReadOnlySet<int> excluded = filter.ExcludedFor(query);
        RowFilter? allowed = filter.Allowed;
        var top = new TopKCollector(k);
        float* w = matrix.HostPointer;
        ReadOnlySpan<float> scales = matrix.Scales;
        ReadOnlySpan<float> offsets = matrix.Offsets;
        float queryOffset = batch.Offsets[query];
        fixed (float* q = batch.Query(query))
        {
            foreach (int row in candidates)
            {
                if (!matrix.IsLive(row) || excluded.Contains(row) || (allowed is not null && !allowed.Contains(row)))
                {
                    continue;
                }

                top.Add(QueryBatch.Score(SimdDot.Dot(w + ((long)row * d), q, d), scales[row], offsets[row], queryOffset), row);
            }
        }

        // Strictly below: an outside row tying the k-th score could otherwise win on row id.
        bool proven = float.IsNegativeInfinity(cutoff) || (top.Count == k && cutoff + bound < top.Threshold);
        return (top.ToHits(), !proven);
    }
}
