using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// CPU kernel for small batches: one fused pass over W's host memory that computes each row's
/// canonical float32 score (<see cref="QueryBatch"/>, <see cref="SimdDot"/>) and keeps a running top-k per query, in parallel over row
/// ranges. One query is bound by memory bandwidth (W is read once, nothing is materialized), which
/// is why it beats matmul + topk, whose topk pass over n scores dominates. Exact by construction.
/// </summary>
/// <remarks>Rows are visited in tiles small enough to stay in L1/L2 while every query of the batch
/// scores them, so a batch of b queries still reads W from memory once.</remarks>
public sealed class ScanKernel : ISearchKernel
{
    /// <summary>Rows per tile: 64 rows of d = 128 are 32 KB, an L1's worth.</summary>
    private const int TileBytes = 32 * 1024;

    /// <summary>How far ahead of the scan W is prefetched, into L2. The hardware prefetcher stops at
    /// 4 KiB page boundaries (8 rows of d = 128), so without this each page starts with a full
    /// memory stall; one page ahead into L1 took one query from about 0.62 to about 0.8 of the
    /// read-W bandwidth on the 2-core machine. Into L2 and two pages ahead did 3–5 % better again
    /// in an interleaved standalone harness (L2 holds more lines in flight than L1's fill buffers);
    /// the non-temporal hint was a third slower.</summary>
    private const int PrefetchBytes = 8 * 1024;

    private const int CacheLineFloats = 64 / sizeof(float);

    /// <summary>Below this many rows per worker, parallelism costs more than it saves.</summary>
    private const int MinRowsPerWorker = 16 * 1024;

    /// <summary>Ranges per worker when the rows are split for dynamic claiming.</summary>
    private const int RangesPerWorker = 8;

    /// <summary>The smallest range worth claiming (a few MB of W at common dimensions).</summary>
    private const int MinRowsPerRange = 8 * 1024;

    private readonly int _parallelism;

    /// <summary>Creates a scan that uses up to <paramref name="maxDegreeOfParallelism"/> threads
    /// (0: one per core).</summary>
    public ScanKernel(int maxDegreeOfParallelism = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxDegreeOfParallelism);
        _parallelism = maxDegreeOfParallelism == 0 ? Environment.ProcessorCount : maxDegreeOfParallelism;
    }

    /// <inheritdoc />
    public string Name => "scan";

    /// <inheritdoc />
    public bool Supports(ConceptMatrix matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        return matrix.IsHostResident;
    }

    /// <inheritdoc />
    public SearchHits[] Search(ConceptMatrix matrix, ReadOnlySpan<float> queries, int k, SearchFilter? filter = null)
    {
        KernelArguments.Check(matrix, queries, k);
        QueryBatch batch = QueryBatch.Prepare(queries, matrix.Dimension, matrix.Metric);
        return Scan(matrix, batch, Enumerable.Range(0, batch.Count).ToArray(), k, filter ?? SearchFilter.None);
    }

    /// <summary>Scans the queries <paramref name="subset"/> of a prepared batch; hit lists come back
    /// in the order of <paramref name="subset"/>.</summary>
    internal SearchHits[] Scan(ConceptMatrix matrix, QueryBatch batch, int[] subset, int k, SearchFilter filter)
    {
        if (!Supports(matrix))
        {
            throw new InvalidOperationException("the scan kernel needs W in host memory");
        }

        int rowLimit = matrix.RowLimit;
        int workers = Math.Clamp(rowLimit / MinRowsPerWorker, 1, _parallelism);
        var excluded = new IReadOnlySet<int>[subset.Length];
        for (int j = 0; j < subset.Length; j++)
        {
            excluded[j] = filter.ExcludedFor(subset[j]);
        }

        var partials = new TopKCollector[workers][];
        // Contiguous ranges claimed in turn rather than one equal share per worker: every row costs
        // the same, but on a shared machine one worker may be descheduled, and the others then take
        // its remaining ranges instead of waiting for it.
        int ranges = workers == 1 ? 1 : Math.Min(workers * RangesPerWorker, rowLimit / MinRowsPerRange);
        int nextRange = -1;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            var collectors = new TopKCollector[subset.Length];
            var thresholds = new float[subset.Length];
            for (int j = 0; j < subset.Length; j++)
            {
                collectors[j] = new TopKCollector(k);
                thresholds[j] = float.NegativeInfinity;
            }

            int range;
            while ((range = Interlocked.Increment(ref nextRange)) < ranges)
            {
                int start = (int)((long)rowLimit * range / ranges);
                int end = (int)((long)rowLimit * (range + 1) / ranges);
                ScanRange(matrix, batch, subset, filter.Allowed, excluded, start, end, collectors, thresholds);
            }

            partials[worker] = collectors;
        });

        var hits = new SearchHits[subset.Length];
        for (int j = 0; j < subset.Length; j++)
        {
            TopKCollector merged = partials[0][j];
            for (int worker = 1; worker < workers; worker++)
            {
                merged.Merge(partials[worker][j]);
            }

            hits[j] = merged.ToHits();
        }

        return hits;
    }

    /// <summary>Offers rows [start, end) to each query's collector; <paramref name="thresholds"/>
    /// caches the collectors' thresholds between ranges.</summary>
    private static unsafe void ScanRange(
        ConceptMatrix matrix, QueryBatch batch, int[] subset, RowFilter? allowed, IReadOnlySet<int>[] excluded, int start, int end,
        TopKCollector[] collectors, float[] thresholds)
    {
        int d = matrix.Dimension;
        int tile = Math.Max(1, TileBytes / (d * sizeof(float)));

        float* w = matrix.HostPointer;
        int prefetchRows = Math.Max(1, PrefetchBytes / (d * sizeof(float)));
        ReadOnlySpan<bool> live = matrix.LiveRows;
        ReadOnlySpan<float> scales = matrix.Scales;
        ReadOnlySpan<float> offsets = matrix.Offsets;
        bool byDistance = batch.ByDistance;
        bool registerQuery = d == SimdDot.RegisterLength && SimdDot.HasRegisterPath;
        fixed (float* queries = batch.Vectors)
        {
            for (int tileStart = start; tileStart < end; tileStart += tile)
            {
                int tileEnd = Math.Min(end, tileStart + tile);
                for (int j = 0; j < subset.Length; j++)
                {
                    int query = subset[j];
                    float* q = queries + ((long)query * d);
                    float queryOffset = batch.Offsets[query];
                    float threshold = thresholds[j];
                    var registers = registerQuery ? new SimdDot.Query128(q) : default;
                    for (int row = tileStart; row < tileEnd; row++)
                    {
                        // The first query's pass brings the tile in; the others find it in cache.
                        if (j == 0 && row + prefetchRows < end)
                        {
                            Prefetch(w + ((long)(row + prefetchRows) * d), d);
                        }

                        if (!live[row] || (allowed is not null && !allowed.Contains(row)))
                        {
                            continue;
                        }

                        float* vector = w + ((long)row * d);
                        float measure = registerQuery ? SimdDot.Measure128(vector, in registers, byDistance) : SimdDot.Measure(vector, q, d, byDistance);
                        float score = QueryBatch.Score(measure, byDistance, scales[row], offsets[row], queryOffset);
                        // Ties with the current worst may still win on row id, so >= rather than >.
                        if (score >= threshold && !excluded[j].Contains(row))
                        {
                            collectors[j].Add(score, row);
                            threshold = collectors[j].Threshold;
                        }
                    }

                    thresholds[j] = threshold;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Prefetch(float* row, int d)
    {
        if (Sse.IsSupported)
        {
            for (int offset = 0; offset < d; offset += CacheLineFloats)
            {
                Sse.Prefetch1(row + offset);
            }
        }
    }
}
