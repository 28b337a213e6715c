using System.Globalization;
using System.Text;

namespace AssocDB.Client.Ingestion;

/// <summary>The checks every reader applies before an item may travel: the server would refuse
/// the same things, but a line-numbered reason here is worth more than a batch index there.</summary>
internal static class ItemChecks
{
    /// <summary>The server's limit on a concept or relation name (1 KiB of UTF-8).</summary>
    public const int MaxNameBytes = 1024;

    /// <summary>The server's limit on a concept's metadata or a fact's payload: 1 MiB of UTF-8 keys
    /// and values. Checked here so that one oversized line is rejected on its own, instead of
    /// making its whole batch too large a message for the server.</summary>
    public const int MaxMapBytes = 1 << 20;

    /// <summary>Null when a map of <paramref name="bytes"/> UTF-8 bytes of keys and values may travel.</summary>
    public static string? MapSize(long bytes, string field) =>
        bytes > MaxMapBytes ? $"{field} holds {bytes} bytes of keys and values; the limit is {MaxMapBytes}" : null;

    /// <summary>Null when <paramref name="name"/> is usable, else why not.</summary>
    public static string? Name(string? name, string field) => Name(string.IsNullOrEmpty(name) ? 0 : Encoding.UTF8.GetByteCount(name), field);

    /// <summary>Null when a name of <paramref name="utf8Bytes"/> bytes of UTF-8 is usable, else why not.</summary>
    public static string? Name(int utf8Bytes, string field) =>
        utf8Bytes == 0 ? $"{field} is missing"
        : utf8Bytes > MaxNameBytes ? $"{field} is {utf8Bytes} bytes of UTF-8; the limit is {MaxNameBytes}"
        : null;

    /// <summary>Parses a weight; null reason when it is a finite number.</summary>
    public static string? Weight(string text, out float weight)
    {
        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out weight))
        {
            // .NET spells infinity "Infinity"; files written by C or Python say "inf".
            return text.TrimStart('+', '-').Equals("inf", StringComparison.OrdinalIgnoreCase)
                ? $"weight is {text}; weights must be finite"
                : $"weight '{Shorten(text)}' is not a number";
        }

        return float.IsFinite(weight) ? null : $"weight is {Shorten(text)}; weights must be finite";
    }

    /// <summary><see cref="Weight(string, out float)"/> on UTF-8 text; the text becomes a string only for the reason.</summary>
    public static string? Weight(ReadOnlySpan<byte> utf8, out float weight) =>
        float.TryParse(utf8, NumberStyles.Float, CultureInfo.InvariantCulture, out weight) && float.IsFinite(weight)
            ? null
            : Weight(Encoding.UTF8.GetString(utf8), out weight);

    /// <summary>Checks a vector's width against the expected one (fixed on first use when unknown), its
    /// values and its norm, as the server does (<paramref name="cosine"/>: for a cosine collection).</summary>
    public static string? Vector(ReadOnlySpan<float> values, ref int? dimension, string field, bool cosine)
    {
        if (values.IsEmpty)
        {
            return $"{field} is empty";
        }

        dimension ??= values.Length;
        if (values.Length != dimension)
        {
            return $"{field} has {values.Length} components; expected {dimension}";
        }

        double squaredNorm = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
            {
                return $"{field}[{i}] is {values[i].ToString(CultureInfo.InvariantCulture)}; components must be finite";
            }

            squaredNorm += (double)values[i] * values[i];
        }

        // The server refuses it too, but a JSON fact line's vectors travel as concepts of their own
        // beside its fact: refused there, the fact was stored (its ends with name-derived vectors)
        // while the line was reported rejected.
        return squaredNorm > MaxSquaredNorm
            ? $"{field} has a squared norm of {squaredNorm.ToString("G3", CultureInfo.InvariantCulture)}, beyond {MaxSquaredNorm.ToString("G3", CultureInfo.InvariantCulture)} (a fifth of float32's range, the server's limit, so that scores stay finite); scale it down"
            : cosine && squaredNorm is > 0 and < MinCosineSquaredNorm
            ? $"{field} has a norm of {Math.Sqrt(squaredNorm).ToString("G3", CultureInfo.InvariantCulture)}; under cosine a vector must be zero or have a norm of at least 7.9e-31 (2^-100), or normalizing it overflows float32"
            : null;
    }

    /// <summary>The server's limit on a vector's squared norm.</summary>
    public const double MaxSquaredNorm = float.MaxValue / 5.0;

    /// <summary>The server's least squared norm of a non-zero vector in a cosine collection (2⁻²⁰⁰).</summary>
    public const double MinCosineSquaredNorm = 6.223015277861142e-61;

    /// <summary>Quotes at most 40 characters of an offending value.</summary>
    public static string Shorten(string text) => text.Length <= 40 ? text : string.Concat(text.AsSpan(0, 37), "...");
}
