using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Device kernel (the default on CUDA): float32 matmul of the queries against W in row chunks on the
/// matrix's device, the canonical score transform, topk per chunk merged into a running top list, and
/// only the final lists copied to the host. Exact in float32; the host pass applies exclusions and
/// the score-then-row order. Runs on any TorchSharp device, which is how it is tested on CPU.
/// </summary>
/// <remarks>Free rows carry an offset of −∞ on the device, so they sort last without a mask. The
/// running list keeps k plus the most rows any query excludes, so exclusions never leave a query
/// short. Scores match <see cref="ScanKernel"/>'s up to float32 summation order (ties aside).</remarks>
public sealed class TorchTopKKernel : ISearchKernel
{
    private readonly long _maxScoreElements;

    /// <summary>Creates the kernel; <paramref name="maxScoreElements"/> bounds the per-chunk score
    /// matrix (queries × chunk rows) on the device.</summary>
    public TorchTopKKernel(long maxScoreElements = 1L << 26)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxScoreElements, 1024L);
        _maxScoreElements = maxScoreElements;
    }

    /// <inheritdoc />
    public string Name => "torch-topk";

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

        int keep = Math.Min(rowLimit, k + filter.MaxExcluded);
        int chunk = (int)Math.Clamp(_maxScoreElements / count, keep, Math.Max(keep, rowLimit));
        float[] topScores;
        int[] topRows;
        using (NewDisposeScope())
        {
            Device device = matrix.Device;
            Tensor prepared = tensor(batch.Vectors, [count, matrix.Dimension]).to(device);
            Tensor queryOffsets = tensor(batch.Offsets).unsqueeze(1).to(device);
            Tensor offsets = matrix.OffsetsOnDevice.narrow(0, 0, rowLimit);
            if (filter.Allowed is { } allowed)
            {
                offsets = offsets.masked_fill(tensor(allowed.ToMask(rowLimit)).to(device).logical_not(), float.NegativeInfinity);
            }

            Tensor? bestScores = null;
            Tensor? bestRows = null;
            for (int start = 0; start < rowLimit; start += chunk)
            {
                int rows = Math.Min(chunk, rowLimit - start);
                using var step = NewDisposeScope();
                // mm (not matmul) so a shape mismatch throws instead of killing the process.
                Tensor scores = prepared.mm(matrix.Weights.narrow(0, start, rows).t())
                    .mul_(matrix.ScalesOnDevice.narrow(0, start, rows)).add_(offsets.narrow(0, start, rows)).sub_(queryOffsets);
                (Tensor values, Tensor indexes) = scores.topk(Math.Min(keep, rows), dim: 1);
                indexes = indexes.add_(start);
                if (bestScores is not null && bestRows is not null)
                {
                    values = cat([bestScores, values], 1);
                    Tensor positions;
                    (values, positions) = values.topk(Math.Min(keep, (int)values.shape[1]), dim: 1);
                    indexes = cat([bestRows, indexes], 1).gather(1, positions);
                }

                bestScores = values.MoveToOuterDisposeScope();
                bestRows = indexes.MoveToOuterDisposeScope();
            }

            topScores = bestScores!.cpu().data<float>().ToArray();
            topRows = bestRows!.to(ScalarType.Int32).cpu().data<int>().ToArray();
        }

        var hits = new SearchHits[count];
        for (int j = 0; j < count; j++)
        {
            IReadOnlySet<int> excluded = filter.ExcludedFor(j);
            var top = new TopKCollector(k);
            for (int i = j * keep; i < (j + 1) * keep; i++)
            {
                int row = topRows[i];
                if (!float.IsNegativeInfinity(topScores[i]) && matrix.IsLive(row) && !excluded.Contains(row))
                {
                    top.Add(topScores[i], row);
                }
            }

            hits[j] = top.ToHits();
        }

        return hits;
    }
}
