using System.Text;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The deterministic pseudo-random unit vector a concept gets when none is given: Gaussian
/// components (Marsaglia's polar method) from a SplitMix64 stream seeded by the FNV-1a hash of the
/// name's UTF-8 bytes, then normalized. No framework RNG is involved, so the same name gives the
/// same vector across .NET versions (up to the last bit of the platform's log and square root);
/// once stored, a vector is kept bit for bit.
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
        ulong state = Fnv1a(name);
        int dimension = vector.Length;
        double norm = 0;
        for (int i = 0; i < dimension; i += 2)
        {
            // Marsaglia's polar method: two independent Gaussians per point drawn uniformly in the
            // unit disc, with one log and one square root and no sine or cosine.
            double u, v, s;
            do
            {
                u = (2.0 * Uniform(ref state)) - 1.0;
                v = (2.0 * Uniform(ref state)) - 1.0;
                s = (u * u) + (v * v);
            }
            while (s >= 1.0 || s == 0.0);

            double factor = Math.Sqrt(-2.0 * Math.Log(s) / s);
            vector[i] = (float)(u * factor);
            norm += (double)vector[i] * vector[i];
            if (i + 1 < dimension)
            {
                vector[i + 1] = (float)(v * factor);
                norm += (double)vector[i + 1] * vector[i + 1];
            }
        }

        float scale = norm > 0 ? (float)(1.0 / Math.Sqrt(norm)) : 0f;
        for (int i = 0; i < dimension; i++)
        {
            vector[i] *= scale;
        }
    }

    /// <summary>FNV-1a over the name's UTF-8 bytes, encoded on the stack for names of ordinary length.</summary>
    private static ulong Fnv1a(string name)
    {
        int maxBytes = Encoding.UTF8.GetMaxByteCount(name.Length);
        Span<byte> bytes = maxBytes <= 1024 ? stackalloc byte[maxBytes] : new byte[maxBytes];
        return Fnv1a(bytes[..Encoding.UTF8.GetBytes(name, bytes)]);
    }

    /// <summary>A uniform double in [0, 1) from the top 53 bits of the next SplitMix64 output.</summary>
    private static double Uniform(ref ulong state) => (NextUInt64(ref state) >> 11) * (1.0 / (1UL << 53));

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
