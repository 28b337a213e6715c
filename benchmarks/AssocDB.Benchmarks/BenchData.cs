using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Benchmarks;

/// <summary>Seeded random unit vectors and a matrix filled with them, shared by both bench tiers.</summary>
internal static class BenchData
{
    /// <summary>Unit Gaussian vectors, row-major; generated in parallel blocks with per-block seeds
    /// so the data is the same on every run and machine.</summary>
    public static float[] UnitVectors(int count, int d, int seed)
    {
        var data = new float[(long)count * d];
        const int Block = 16_384;
        Parallel.For(0, (count + Block - 1) / Block, block =>
        {
            var random = new Random(HashCode.Combine(seed, block));
            int end = Math.Min(count, (block + 1) * Block);
            for (int i = block * Block; i < end; i++)
            {
                Span<float> row = data.AsSpan(i * d, d);
                double sum = 0;
                for (int j = 0; j < d; j++)
                {
                    double g = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
                    row[j] = (float)g;
                    sum += g * g;
                }

                float inverse = (float)(1 / Math.Sqrt(sum));
                foreach (ref float x in row)
                {
                    x *= inverse;
                }
            }
        });
        return data;
    }

    /// <summary>A CPU matrix holding <paramref name="vectors"/> in rows 0..count−1.</summary>
    public static ConceptMatrix Matrix(float[] vectors, int d, Metric metric = Metric.Cosine, StoragePrecision precision = StoragePrecision.Float32)
    {
        int count = vectors.Length / d;
        var matrix = new ConceptMatrix(d, CPU, metric, precision, initialCapacity: count);
        const int Batch = 65_536;
        for (int start = 0; start < count; start += Batch)
        {
            int rows = Math.Min(Batch, count - start);
            matrix.SetRows(Enumerable.Range(start, rows).ToArray(), vectors.AsSpan(start * d, rows * d));
        }

        return matrix;
    }

    /// <summary>The median of a non-empty sample (the mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyCollection<double> sample)
    {
        double[] sorted = [.. sample.Order()];
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
