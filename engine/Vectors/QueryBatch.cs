using AssocDB.Engine.Model;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Queries prepared for scoring against a <see cref="ConceptMatrix"/>. Every kernel's final score
/// of row <c>r</c> for query <c>j</c> (its canonical score) is, for cosine and dot,
/// <c>(w_r·q̃_j)·scale_r + offset_r − qOffset_j</c>, where for cosine <c>q̃ = q/‖q‖</c> and
/// <c>scale = 1/‖w‖</c>, for dot <c>q̃ = q</c>, scale 1, offsets 0; and for l2 <c>−‖w_r − q_j‖²</c>
/// summed from the differences. Coarse passes score l2 in the expanded form, scale 2,
/// <c>offset = −‖w‖²</c>, <c>qOffset = ‖q‖²</c>, which is the same value in exact arithmetic but
/// cancels in float32 far from the origin; their re-rank proofs bound the gap
/// (<see cref="DistanceRounding"/>). One formula, evaluated by <see cref="Score"/> in a fixed order,
/// is what makes the scan and the re-rank of the GEMM path return bit-identical scores.
/// </summary>
internal sealed class QueryBatch
{
    private QueryBatch(float[] vectors, float[] offsets, float[] norms, int count, int dimension, bool byDistance)
    {
        ByDistance = byDistance;
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

    /// <summary>Whether rows are scored by their distance to the query (l2), not a product.</summary>
    public bool ByDistance { get; }

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

        return new QueryBatch(vectors, offsets, norms, count, dimension, metric == Metric.L2);
    }

    /// <summary>The canonical score of a row given its <see cref="SimdDot.Measure"/> with q̃ (the
    /// squared distance when <paramref name="byDistance"/>, else the dot product).</summary>
    public static float Score(float measure, bool byDistance, float scale, float offset, float queryOffset) =>
        byDistance ? -measure : (measure * scale) + offset - queryOffset;

    /// <summary>The highest canonical score a row can have when its exact score is at most
    /// <paramref name="reach"/> (a coarse cut plus the coarse pass's error bound): the reach itself
    /// where the canonical score is the one bounded; for l2's distance, which the bounds do not
    /// cover (they bound the expanded form's arithmetic), plus <see cref="DistanceRounding"/> of it
    /// and, for roundings below float32's normal range (each may lose 2⁻¹⁵⁰ however small the
    /// value), 2d + 4 of the smallest float, rounded up.</summary>
    public float Ceiling(float reach) => ByDistance
        ? MathF.BitIncrement((float)(reach + (DistanceRounding(Dimension) * Math.Abs(reach)) + (((2.0 * Dimension) + 4) * float.Epsilon)))
        : reach;

    /// <summary>How far an l2 canonical score <c>s</c> may lie from the exact <c>−‖w − q‖²</c>, as a
    /// fraction of |s|: each difference, square and sum rounds once (d + 2 unit roundoffs, 2⁻²⁴
    /// each), doubled for margin. A proof that bounds a coarse score against the exact value adds
    /// this much of the bound's reach to cover the canonical score's own rounding.</summary>
    public static double DistanceRounding(int dimension) => (dimension + 2) * Math.Pow(2, -23);
}
