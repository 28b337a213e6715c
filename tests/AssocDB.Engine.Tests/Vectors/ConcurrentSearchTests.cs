using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards the locking contract the collection relies on: with searches under a read lock and
// inserts, deletes and growth under the write lock, no search returns a removed row or a row whose
// vector is half-written, on the scan and the GEMM path alike.
public sealed class ConcurrentSearchTests
{
    private const int Dimension = 32;

    /// <summary>Every component of row r's vector at generation g is the same value, so a torn
    /// write would show as a row whose components differ.</summary>
    private static float[] Pattern(int row, int generation) =>
        Enumerable.Repeat(1f + (row % 97) + (generation * 0.001f), Dimension).ToArray();

    [Fact]
    public async Task Searches_under_read_lock_never_see_removed_or_torn_rows()
    {
        using var matrix = new ConceptMatrix(Dimension, CPU, Metric.Dot, StoragePrecision.Float16, initialCapacity: 16);
        using var gate = new ReaderWriterLockSlim();
        var search = new VectorSearch();
        var gemm = new ChunkedGemmKernel(maxScoreElements: 4096);
        matrix.SetRows(Enumerable.Range(0, 200).ToArray(), Enumerable.Range(0, 200).SelectMany(r => Pattern(r, 0)).ToArray());

        using var stop = new CancellationTokenSource();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long searches = 0;

        var writer = DedicatedThread.Run(() =>
        {
            var random = new Random(1);
            int next = 200;
            try
            {
                for (int generation = 1; generation <= 200; generation++)
                {
                    // Let readers in between writes; the lock prefers waiting writers.
                    Thread.Sleep(1);
                    gate.EnterWriteLock();
                    try
                    {
                        // Inserts past the capacity make W grow (move) while readers wait.
                        int[] rows = Enumerable.Range(next, 8).ToArray();
                        next += 8;
                        matrix.SetRows(rows, rows.SelectMany(r => Pattern(r, generation)).ToArray());
                        for (int i = 0; i < 6; i++)
                        {
                            matrix.Remove(random.Next(next));
                        }

                        int rewrite = random.Next(next);
                        matrix.Set(rewrite, Pattern(rewrite, generation));
                    }
                    finally
                    {
                        gate.ExitWriteLock();
                    }
                }
            }
            finally
            {
                // Readers stop even when the writer fails, so a failure is reported instead of a hang.
                stop.Cancel();
            }
        });

        Task Reader(int seed, bool batch) => DedicatedThread.Run(() =>
        {
            var random = new Random(seed);
            while (!stop.IsCancellationRequested)
            {
                int count = batch ? 24 : 1;
                float[] queries = Enumerable.Range(0, count * Dimension).Select(_ => (float)random.NextDouble() - 0.3f).ToArray();
                gate.EnterReadLock();
                try
                {
                    SearchHits[] results = batch ? gemm.Search(matrix, queries, 10) : search.Search(matrix, queries, 10).Value;
                    foreach (SearchHits hits in results)
                    {
                        foreach (int row in hits.Rows)
                        {
                            if (!matrix.IsLive(row))
                            {
                                failures.Enqueue($"removed row {row} returned");
                                continue;
                            }

                            float[] vector = matrix.GetRow(row);
                            if (vector.Any(x => x != vector[0]))
                            {
                                failures.Enqueue($"torn row {row}");
                            }
                        }
                    }

                    Interlocked.Increment(ref searches);
                }
                finally
                {
                    gate.ExitReadLock();
                }
            }
        });

        await Task.WhenAll(writer, Reader(2, batch: false), Reader(3, batch: true));
        Assert.Empty(failures);
        Assert.True(Interlocked.Read(ref searches) > 20, $"only {searches} searches ran");
    }
}
