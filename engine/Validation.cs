using System.Text;
using AssocDB.Engine.Model;

namespace AssocDB.Engine;

/// <summary>Input checks shared by every operation; each returns the error naming the field, or null.</summary>
internal static class Validation
{
    /// <summary>Names are at most 1 KiB of UTF-8: long enough for IRIs, short enough to index cheaply.</summary>
    public const int MaxNameBytes = 1024;

    /// <summary>The largest vector dimension a collection may have.</summary>
    public const int MaxDimension = 4096;

    /// <summary>Metadata or a payload is at most 1 MiB of UTF-8 keys and values, so that a concept's
    /// or fact's record fits a 4 MiB state-store page: with their length prefixes (at most 1.7 MB for
    /// many tiny entries), a name and a vector (at most 17 KB).</summary>
    public const int MaxMapBytes = 1 << 20;

    public static EngineError? Name(string? name, string field) => Name(name.AsSpan(), field);

    /// <summary>As <see cref="Name(string?, string)"/>, for a name's characters (empty when it is null).</summary>
    public static EngineError? Name(ReadOnlySpan<char> name, string field)
    {
        if (name.IsEmpty)
        {
            return EngineError.Invalid(field, "must not be empty");
        }

        // Every name of every fact is checked, so the common case is answered by one vectorized
        // scan: an ASCII name is as many bytes as chars, and has no surrogates.
        bool ascii = Ascii.IsValid(name);
        int bytes = ascii ? name.Length : Encoding.UTF8.GetByteCount(name);
        if (bytes > MaxNameBytes)
        {
            return EngineError.Invalid(field, $"is {bytes} bytes of UTF-8; the limit is {MaxNameBytes}");
        }

        if (!ascii && !IsWellFormed(name))
        {
            return EngineError.Invalid(field, "is not well-formed Unicode (unpaired surrogate)");
        }

        return null;
    }


    /// <summary>The largest squared norm of a stored or query vector.</summary>
    public const double MaxSquaredNorm = float.MaxValue / 5.0;

    /// <summary>Below this squared norm (norm 2⁻¹⁰⁰ ≈ 7.9e-31) a row's cosine scale 1/‖w‖ would
    /// overflow float32 (it does below ‖w‖ ≈ 2.9e-39), and the row would score ∞ or NaN.</summary>
    private const double MinCosineSquaredNorm = 6.223015277861142e-61; // 2⁻²⁰⁰

    /// <summary>Checks a vector's length, components and norm; <paramref name="cosineRow"/> also
    /// refuses a norm too small to normalize (a row stored under cosine; zero is allowed).</summary>
    public static EngineError? Vector(float[]? vector, int dimension, string field, bool cosineRow = false)
    {
        if (vector is null)
        {
            return null;
        }

        if (vector.Length != dimension)
        {
            return EngineError.Invalid(field, $"has {vector.Length} components; the collection's dimension is {dimension}");
        }

        double squaredNorm = 0;
        for (int i = 0; i < vector.Length; i++)
        {
            if (!float.IsFinite(vector[i]))
            {
                return EngineError.Invalid($"{field}[{i}]", $"is {vector[i]}; components must be finite");
            }

            squaredNorm += (double)vector[i] * vector[i];
        }

        // Scores are float32: l2's ‖w − q‖² ≤ (‖w‖ + ‖q‖)², at most four times this bound, and dot's
        // w·q stay finite for any two vectors within it, with room for rounding (at a quarter, a row
        // and its opposite at the bound summed to +∞). Past it they overflow to ±∞ (a farther row
        // then ties the nearest and wins on its row id), or NaN, which no ranking can order.
        if (squaredNorm > MaxSquaredNorm)
        {
            return EngineError.Invalid(field, $"has a squared norm of {squaredNorm:G3}, beyond {MaxSquaredNorm:G3} (a fifth of float32's range, so that scores stay finite); scale it down");
        }

        return cosineRow && squaredNorm is > 0 and < MinCosineSquaredNorm
            ? EngineError.Invalid(field, $"has a norm of {Math.Sqrt(squaredNorm):G3}; under cosine a vector must be zero or have a norm of at least 7.9e-31 (2^-100), or normalizing it overflows float32")
            : null;
    }

    public static EngineError? Weight(float weight, string field) =>
        float.IsFinite(weight) ? null : EngineError.Invalid(field, $"is {weight}; weights must be finite");

    public static EngineError? Map(IReadOnlyDictionary<string, string>? map, string field)
    {
        if (map is null)
        {
            return null;
        }

        long bytes = 0;
        foreach ((string key, string value) in map)
        {
            if (Name(key, $"{field}.key") is { } keyError)
            {
                return keyError;
            }

            if (value is null)
            {
                return EngineError.Invalid($"{field}[{key}]", "value must not be null");
            }

            // Stored as UTF-8, which has no unpaired surrogates: the stored value would differ from
            // the one in memory, and filters on it would stop matching after a reopen.
            if (!IsWellFormed(value))
            {
                return EngineError.Invalid($"{field}[{key}]", "is not well-formed Unicode (unpaired surrogate)");
            }

            bytes += Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value);
        }

        return bytes > MaxMapBytes ? EngineError.Invalid(field, $"holds {bytes} bytes of keys and values; at most {MaxMapBytes}") : null;
    }

    private static bool IsWellFormed(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]))
            {
                if (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }
}
