using AssocDB.Engine.Model;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Queries prepared for scoring against a <see cref="ConceptMatrix"/>: every kernel scores row
/// <c>r</c> against query <c>j</c> as <c>(w_r·q̃_j)·scale_r + offset_r − qOffset_j</c>, where for
/// cosine <c>q̃ = q/‖q‖</c> and <c>scale = 1/‖w‖</c>; for dot <c>q̃ = q</c>, scale 1, offsets 0; for
/// l2 <c>q̃ = q</c>, scale 2, <c>offset = −‖w‖²</c>, <c>qOffset = ‖q‖²</c>, which is
/// <c>−(‖w‖² − 2w·q + ‖q‖²)</c>. One formula, evaluated by <see cref="Score"/> in a fixed order, is
/// what makes the scan and the re-rank of the GEMM path return bit-identical scores.
/// </summary>
internal sealed class QueryBatch
{
    private QueryBatch(float[] vectors, float[] offsets, float[] norms, int count, int dimension)
    {
        Vectors = vectors;
        Offsets = offsets;
        Norms = norms;
        Count = count;
        Dimension = dimension;
    }

    /// <summary>The prepared vectors q̃, row-major [Count, Dimension].</summary>
    public float[] Vectors { get; }

    /// <summary>qOffset per query.</summary>
    public float[] Offsets { get; }

    /// <summary>‖q̃‖ per query, used by error bounds.</summary>
    public float[] Norms { get; }

    /// <summary>Number of queries.</summary>
    public int Count { get; }

    /// <summary>Vector dimension.</summary>
    public int Dimension { get; }

    /// <summary>The prepared vector of query <paramref name="j"/>.</summary>
    public ReadOnlySpan<float> Query(int j) => Vectors.AsSpan(j * Dimension, Dimension);

    /// <summary>Prepares <paramref name="queries"/> (row-major, a multiple of d long) for a metric.</summary>
    public static QueryBatch Prepare(ReadOnlySpan<float> queries, int dimension, Metric metric)
    {
        int count = queries.Length / dimension;
        var vectors = queries.ToArray();
        var offsets = new float[count];
        var norms = new float[count];
        for (int j = 0; j < count; j++)
        {
            Span<float> q = vectors.AsSpan(j * dimension, dimension);
            double squared = 0;
            foreach (float x in q)
            {
                squared += (double)x * x;
            }

            norms[j] = (float)Math.Sqrt(squared);
            if (metric == Metric.Cosine && squared > 0)
            {
                // Divided in double: 1/‖q‖ overflows float32 below ‖q‖ ≈ 2.9e-39 (a c + r query can
                // land that near the origin), and the query became ∞ and NaN.
                double norm = Math.Sqrt(squared);
                foreach (ref float x in q)
                {
                    x = (float)(x / norm);
                }

                norms[j] = 1f;
            }
            else if (metric == Metric.L2)
            {
                offsets[j] = (float)squared;
            }
        }

        return new QueryBatch(vectors, offsets, norms, count, dimension);
    }

    /// <summary>The canonical score of a row for a query given the row's raw dot product with q̃.</summary>
    public static float Score(float dot, float scale, float offset, float queryOffset) => (dot * scale) + offset - queryOffset;
}
