using TorchSharp;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Device kernel (the default on CUDA): float32 matmul of the queries against W in row chunks on the
/// matrix's device, the product score transform, topk per chunk merged into a running top list, and
/// only the final lists copied to the host. The host pass applies exclusions and the score-then-row
/// order. Runs on any TorchSharp device, which is how it is tested on CPU.
/// </summary>
/// <remarks>
/// <para>Free rows carry an offset of −∞ on the device, so they sort last without a mask. The
/// running list keeps k plus the most rows any query excludes, so exclusions never leave a query
/// short. Cosine and dot scores match <see cref="ScanKernel"/>'s up to float32 summation order
/// (ties aside).</para>
/// <para>l2 is ranked in the expanded form by the matmul, which cancels far from the origin, so the
/// list keeps as many candidates as <see cref="ChunkedGemmKernel"/> does, re-ranks them by their
/// distance summed from the differences on the device, and proves the cut as that kernel does
/// (<see cref="ChunkedGemmKernel.ErrorBound"/>). A query the proof fails is searched again by
/// distance over every row.</para>
/// </remarks>
public sealed class TorchTopKKernel : ISearchKernel
{
    private readonly long _maxScoreElements;
    private long _fallbackQueries;

    /// <summary>Creates the kernel; <paramref name="maxScoreElements"/> bounds the per-chunk score
    /// matrix (queries × chunk rows) on the device, and the rows gathered for an l2 re-rank.</summary>
    public TorchTopKKernel(long maxScoreElements = 1L << 26)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxScoreElements, 1024L);
        _maxScoreElements = maxScoreElements;
    }

    /// <inheritdoc />
    public string Name => "torch-topk";

    /// <summary>l2 queries searched again by distance over every row because the re-rank of their
    /// candidates could not prove exactness.</summary>
    public long FallbackQueries => Interlocked.Read(ref _fallbackQueries);

    /// <inheritdoc />
    public bool Supports(ConceptMatrix matrix) => matrix is not null;

    /// <inheritdoc />
    public SearchHits[] Search(ConceptMatrix matrix, ReadOnlySpan<float> queries, int k, SearchFilter? filter = null)
    {
        KernelArguments.Check(matrix, queries, k);
        filter ??= SearchFilter.None;
        QueryBatch batch = QueryBatch.Prepare(queries, matrix.Dimension, matrix.Metric);
        int count = batch.Count;
        int rowLimit = matrix.RowLimit;
        if (rowLimit == 0)
        {
            return Enumerable.Range(0, count).Select(_ => new SearchHits([], [])).ToArray();
        }

        // Cosine and dot keep one row more than a query can need, which tells whether a run of tied
        // scores at its cut reaches past the list (see ResolveTiesAtTheCut).
        int keep = batch.ByDistance ? ChunkedGemmKernel.CandidateCount(k, filter.MaxExcluded, rowLimit) : Math.Min(rowLimit, k + filter.MaxExcluded + 1);
        var hits = new SearchHits[count];
        var unproven = new List<int>();
        using (NewDisposeScope())
        {
            Device device = matrix.Device;
            Tensor prepared = tensor(batch.Vectors, [count, matrix.Dimension]).to(device);
            Tensor queryOffsets = tensor(batch.Offsets).unsqueeze(1).to(device);
            Tensor offsets = EligibleOffsets(matrix, filter);
            Tensor weights = matrix.Weights;
            Tensor scales = matrix.ScalesOnDevice;
            int chunk = (int)Math.Clamp(_maxScoreElements / count, keep, Math.Max(keep, rowLimit));
            Tensor ScoresOf(int start, int rows) =>
                // mm (not matmul) so a shape mismatch throws instead of killing the process.
                prepared.mm(weights.narrow(0, start, rows).t())
                    .mul_(scales.narrow(0, start, rows)).add_(offsets.narrow(0, start, rows), TorchScalars.One).sub_(queryOffsets);
            (Tensor bestScores, Tensor bestRows) = RunningTop(rowLimit, chunk, keep, ScoresOf);
            float[] topScores = bestScores.cpu().data<float>().ToArray();
            int[] topRows = bestRows.to(ScalarType.Int32).cpu().data<int>().ToArray();
            if (!batch.ByDistance)
            {
                for (int j = 0; j < count; j++)
                {
                    hits[j] = Collect(matrix, topScores, topScores, topRows, j, keep, k, filter.ExcludedFor(j)).ToHits();
                }

                ResolveTiesAtTheCut(matrix, hits, topScores, topRows, keep, k, j => filter.ExcludedFor(j), chunk, ScoresOf);
                return hits;
            }

            float[] canonical = NegatedDistances(weights, prepared, bestRows).cpu().data<float>().ToArray();
            float maxNorm = matrix.NormsOnDevice.narrow(0, 0, rowLimit).max().item<float>();
            float bound = ChunkedGemmKernel.ErrorBound(
                ScalarType.Float32, matrix.Dimension, 2 * batch.Norms.Max() * maxNorm, (maxNorm * maxNorm) + batch.Offsets.Max());
            for (int j = 0; j < count; j++)
            {
                TopKCollector top = Collect(matrix, topScores, canonical, topRows, j, keep, k, filter.ExcludedFor(j));

                // The list holds every eligible row when it holds every row or its last score is −∞;
                // otherwise rows outside it scored at most that in the expanded form, so at most that
                // plus the bound by distance: below the k-th, tied rows included, when proven.
                float cutoff = topScores[((j + 1) * keep) - 1];
                bool proven = keep == rowLimit || float.IsNegativeInfinity(cutoff)
                    || (float.IsFinite(bound) && top.Count == k && batch.Ceiling(cutoff + bound) < top.Threshold);
                hits[j] = top.ToHits();
                if (!proven)
                {
                    unproven.Add(j);
                }
            }
        }

        if (unproven.Count > 0)
        {
            Interlocked.Add(ref _fallbackQueries, unproven.Count);
            SearchHits[] exact = SearchByDistance(matrix, batch, [.. unproven], k, filter);
            for (int i = 0; i < unproven.Count; i++)
            {
                hits[unproven[i]] = exact[i];
            }
        }

        return hits;
    }

    /// <summary>The top k of list <paramref name="list"/> (entries list·keep onwards): each listed row
    /// scored by <paramref name="scores"/>, less the entries the pass ranked −∞ in
    /// <paramref name="ranked"/> (free or filtered rows), rows freed since and the query's
    /// exclusions.</summary>
    private static TopKCollector Collect(ConceptMatrix matrix, float[] ranked, float[] scores, int[] rows, int list, int keep, int k, IReadOnlySet<int> excluded)
    {
        var top = new TopKCollector(k);
        for (int i = list * keep; i < (list + 1) * keep; i++)
        {
            if (!float.IsNegativeInfinity(ranked[i]) && matrix.IsLive(rows[i]) && !excluded.Contains(rows[i]))
            {
                top.Add(scores[i], rows[i]);
            }
        }

        return top;
    }

    /// <summary>
    /// Completes the hits of queries whose k-th score ties the last entry of their list
    /// (<paramref name="keep"/> entries a query in <paramref name="scores"/> and
    /// <paramref name="rows"/>, ranked by the canonical score): rows outside the list may share that
    /// score, and topk keeps an arbitrary subset of a run of ties at its cut, where results order
    /// ties by row. Every row scoring exactly the tied score is found by a second pass of
    /// <paramref name="scoresOf"/> (rare: it takes equal scores, as from duplicate vectors) and
    /// offered beside the list's entries, so the lowest rows of the run win.
    /// </summary>
    private static void ResolveTiesAtTheCut(
        ConceptMatrix matrix, SearchHits[] hits, float[] scores, int[] rows, int keep, int k,
        Func<int, IReadOnlySet<int>> excludedFor, int chunk, Func<int, int, Tensor> scoresOf)
    {
        int rowLimit = matrix.RowLimit;
        // NaN equals nothing, so queries without a tie match no row.
        float[] tiedScores = new float[hits.Length];
        Array.Fill(tiedScores, float.NaN);
        var runs = new Dictionary<int, List<int>>();
        // Each query's exclusions as a set once: made per matched row, a run of equal vectors made
        // one per row.
        var excluded = new Dictionary<int, IReadOnlySet<int>>();
        for (int j = 0; j < hits.Length; j++)
        {
            if (keep < rowLimit && hits[j].Count == k && scores[((j + 1) * keep) - 1] == hits[j].Scores[^1])
            {
                tiedScores[j] = hits[j].Scores[^1];
                runs[j] = [];
                excluded[j] = excludedFor(j);
            }
        }

        if (runs.Count == 0)
        {
            return;
        }

        // Chunks come in row order, so a run needs no more than its k lowest eligible rows: with
        // millions of equal vectors, keeping every match would hold millions of rows per query.
        int open = runs.Count;
        using (NewDisposeScope())
        {
            Tensor wanted = tensor(tiedScores).unsqueeze(1).to(matrix.Device);
            for (int start = 0; start < rowLimit && open > 0; start += chunk)
            {
                using var step = NewDisposeScope();
                Tensor found = scoresOf(start, Math.Min(chunk, rowLimit - start)).eq(wanted).nonzero();
                // TorchSharp cannot read an empty tensor's data.
                long[] matches = found.shape[0] == 0 ? [] : found.cpu().data<long>().ToArray();
                for (int i = 0; i < matches.Length; i += 2)
                {
                    int j = (int)matches[i], row = start + (int)matches[i + 1];
                    List<int> run = runs[j];
                    if (run.Count < k && matrix.IsLive(row) && !excluded[j].Contains(row))
                    {
                        run.Add(row);
                        open -= run.Count == k ? 1 : 0;
                    }
                }
            }
        }

        foreach ((int j, List<int> run) in runs)
        {
            TopKCollector top = Collect(matrix, scores, scores, rows, j, keep, k, excluded[j]);
            var listed = new HashSet<int>(rows.AsSpan(j * keep, keep).ToArray());
            foreach (int row in run.Where(row => !listed.Contains(row)))
            {
                top.Add(tiedScores[j], row);
            }

            hits[j] = top.ToHits();
        }
    }

    /// <summary>Row offsets with the rows the filter leaves out set to −∞, like free rows.</summary>
    private static Tensor EligibleOffsets(ConceptMatrix matrix, SearchFilter filter)
    {
        Tensor offsets = matrix.OffsetsOnDevice.narrow(0, 0, matrix.RowLimit);
        return filter.Allowed is { } allowed
            ? offsets.masked_fill(tensor(allowed.ToMask(matrix.RowLimit)).to(matrix.Device).logical_not(), TorchScalars.NegativeInfinity)
            : offsets;
    }

    /// <summary>The best <paramref name="keep"/> scores and their rows per query over W's rows, taken
    /// <paramref name="chunk"/> rows at a time; a chunk's scores ([queries, rows]) come from
    /// <paramref name="scoresOf"/>(start, rows). The results belong to the caller's dispose scope.</summary>
    private static (Tensor Scores, Tensor Rows) RunningTop(int rowLimit, int chunk, int keep, Func<int, int, Tensor> scoresOf)
    {
        Tensor? bestScores = null;
        Tensor? bestRows = null;
        for (int start = 0; start < rowLimit; start += chunk)
        {
            int rows = Math.Min(chunk, rowLimit - start);
            using var step = NewDisposeScope();
            (Tensor values, Tensor indexes) = scoresOf(start, rows).topk(Math.Min(keep, rows), dim: 1);
            using Scalar first = start.ToScalar();
            indexes = indexes.add_(first, TorchScalars.One);
            if (bestScores is not null && bestRows is not null)
            {
                values = cat([bestScores, values], 1);
                Tensor positions;
                (values, positions) = values.topk(Math.Min(keep, (int)values.shape[1]), dim: 1);
                indexes = cat([bestRows, indexes], 1).gather(1, positions);
            }

            // The lists this step replaces live in the caller's scope: freed now, not when it ends.
            bestScores?.Dispose();
            bestRows?.Dispose();
            bestScores = values.MoveToOuterDisposeScope();
            bestRows = indexes.MoveToOuterDisposeScope();
        }

        return (bestScores!, bestRows!);
    }

    /// <summary>−‖w − q‖² of each query's listed rows ([queries, keep]), summed from the differences,
    /// gathering as many of them at a time as the element budget allows: the rows of several queries,
    /// or part of one query's (l2 keeps 4k rows: 40,000 × 4,096 floats for k = 10,000, 2.4 times
    /// the default budget).</summary>
    private Tensor NegatedDistances(Tensor weights, Tensor prepared, Tensor rows)
    {
        long queries = rows.shape[0], keep = rows.shape[1], d = prepared.shape[1];
        long columns = Math.Clamp(_maxScoreElements / d, 1, keep);
        long perStep = Math.Max(1, _maxScoreElements / (columns * d));
        var parts = new List<Tensor>();
        for (long start = 0; start < queries; start += perStep)
        {
            long n = Math.Min(perStep, queries - start);
            var pieces = new List<Tensor>();
            for (long column = 0; column < keep; column += columns)
            {
                long m = Math.Min(columns, keep - column);
                using var step = NewDisposeScope();
                Tensor gathered = weights.index_select(0, rows.narrow(0, start, n).narrow(1, column, m).flatten()).view(n, m, d);
                pieces.Add(gathered.sub_(prepared.narrow(0, start, n).unsqueeze(1)).pow_(TorchScalars.Two).sum(2).neg_().MoveToOuterDisposeScope());
            }

            parts.Add(pieces.Count == 1 ? pieces[0] : cat(pieces, 1));
        }

        return cat(parts, 0);
    }

    /// <summary>The top k of the <paramref name="queries"/> of a batch by distance summed from the
    /// differences over every eligible row: the answers when their re-rank could not prove the
    /// matmul's cut.</summary>
    private SearchHits[] SearchByDistance(ConceptMatrix matrix, QueryBatch batch, int[] queries, int k, SearchFilter filter)
    {
        int keep = Math.Min(matrix.RowLimit, k + filter.MaxExcluded + 1);
        // A chunk's differences are queries × rows × d elements, and a chunk holds at least the rows
        // a query keeps: as many queries at a time as leave room for that. All at once, 256 queries
        // for 10,000 hits at d = 4,096 took 42 GB against a budget of 256 MB.
        int group = (int)Math.Clamp(_maxScoreElements / ((long)keep * batch.Dimension), 1, queries.Length);
        return [.. queries.Chunk(group).SelectMany(part => SearchGroupByDistance(matrix, batch, part, k, keep, filter))];
    }

    /// <summary><see cref="SearchByDistance"/> for a group of queries, all of them in one pass over W,
    /// each keeping <paramref name="keep"/> rows.</summary>
    private SearchHits[] SearchGroupByDistance(ConceptMatrix matrix, QueryBatch batch, int[] queries, int k, int keep, SearchFilter filter)
    {
        int rowLimit = matrix.RowLimit;
        int d = batch.Dimension;
        var hits = new SearchHits[queries.Length];
        using (NewDisposeScope())
        {
            Device device = matrix.Device;
            Tensor prepared = tensor(batch.Vectors, [batch.Count, d]).index_select(0, tensor(queries, ScalarType.Int64)).to(device).unsqueeze(1);
            Tensor ineligible = EligibleOffsets(matrix, filter).eq(TorchScalars.NegativeInfinity);
            Tensor weights = matrix.Weights;
            // One chunk's differences are queries × rows × d elements.
            int chunk = (int)Math.Clamp(_maxScoreElements / ((long)queries.Length * d), keep, Math.Max(keep, rowLimit));
            Tensor ScoresOf(int start, int count) =>
                // Ineligible rows score −∞, so they sort last as in the matmul pass.
                weights.narrow(0, start, count).unsqueeze(0).sub(prepared).pow_(TorchScalars.Two).sum(2).neg_()
                    .masked_fill_(ineligible.narrow(0, start, count).unsqueeze(0), TorchScalars.NegativeInfinity);
            (Tensor bestScores, Tensor bestRows) = RunningTop(rowLimit, chunk, keep, ScoresOf);
            float[] scores = bestScores.cpu().data<float>().ToArray();
            int[] rows = bestRows.to(ScalarType.Int32).cpu().data<int>().ToArray();
            for (int q = 0; q < queries.Length; q++)
            {
                hits[q] = Collect(matrix, scores, scores, rows, q, keep, k, filter.ExcludedFor(queries[q])).ToHits();
            }

            ResolveTiesAtTheCut(matrix, hits, scores, rows, keep, k, q => filter.ExcludedFor(queries[q]), chunk, ScoresOf);
        }

        return hits;
    }
}
