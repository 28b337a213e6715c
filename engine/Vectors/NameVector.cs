using System.Text;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The deterministic pseudo-random unit vector a concept gets when none is given: Gaussian
/// components from a SplitMix64 stream seeded by the FNV-1a hash of the name's UTF-8 bytes, then
/// normalized. No framework RNG is involved, so the same name gives the same vector across .NET
/// versions (up to the last bit of the platform's log and sin/cos); once stored, a vector is kept
/// bit for bit.
/// </summary>
public static class NameVector
{
    /// <summary>The unit vector of a name in a given dimension.</summary>
    public static float[] For(string name, int dimension)
    {
        var vector = new float[dimension];
        Fill(name, vector);
        return vector;
    }

    /// <summary>Writes the unit vector of a name into <paramref name="vector"/> (its length is the dimension).</summary>
    public static void Fill(string name, Span<float> vector)
    {
        ulong state = Fnv1a(Encoding.UTF8.GetBytes(name));
        int dimension = vector.Length;
        double norm = 0;
        for (int i = 0; i < dimension; i += 2)
        {
            // Box–Muller gives two independent Gaussians per pair of uniforms; u1 is kept away from
            // 0 so the log is finite.
            double u1 = (NextUInt64(ref state) >> 11) * (1.0 / (1UL << 53));
            double u2 = (NextUInt64(ref state) >> 11) * (1.0 / (1UL << 53));
            double radius = Math.Sqrt(-2.0 * Math.Log(Math.Max(u1, 1e-300)));
            (double sin, double cos) = Math.SinCos(2 * Math.PI * u2);
            vector[i] = (float)(radius * cos);
            norm += (double)vector[i] * vector[i];
            if (i + 1 < dimension)
            {
                vector[i + 1] = (float)(radius * sin);
                norm += (double)vector[i + 1] * vector[i + 1];
            }
        }

        float scale = norm > 0 ? (float)(1.0 / Math.Sqrt(norm)) : 0f;
        for (int i = 0; i < dimension; i++)
        {
            vector[i] *= scale;
        }
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }

    private static ulong NextUInt64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
