using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The one float32 dot product and the one squared distance every CPU kernel uses (<see cref="Measure"/>), so that a row
/// scores the same bits whichever kernel ranked it. Widest available vectors with fused
/// multiply-add and four independent accumulators (to hide FMA latency); the summation order
/// depends only on the length. Both are one loop (<see cref="Sum{TTerm}"/>) over a different term.
/// </summary>
internal static class SimdDot
{
    /// <summary>The length <see cref="Measure128"/> serves.</summary>
    public const int RegisterLength = 128;

    /// <summary>Whether <see cref="Measure128"/> can run on this CPU.</summary>
    public static bool HasRegisterPath => Vector512.IsHardwareAccelerated;

    /// <summary>The term a kernel sums per coordinate, added to an accumulator with one fused
    /// multiply-add. Implemented by structs, so each sum is compiled for its term.</summary>
    private interface ITerm
    {
        static abstract Vector512<float> Accumulate(Vector512<float> a, Vector512<float> b, Vector512<float> sum);

        static abstract Vector256<float> Accumulate(Vector256<float> a, Vector256<float> b, Vector256<float> sum);

        static abstract float Accumulate(float a, float b, float sum);
    }

    /// <summary>A query of <see cref="RegisterLength"/> floats held in eight 512-bit registers.</summary>
    public readonly unsafe ref struct Query128(float* b)
    {
        public readonly Vector512<float> B0 = Vector512.Load(b), B1 = Vector512.Load(b + 16), B2 = Vector512.Load(b + 32), B3 = Vector512.Load(b + 48);
        public readonly Vector512<float> B4 = Vector512.Load(b + 64), B5 = Vector512.Load(b + 80), B6 = Vector512.Load(b + 96), B7 = Vector512.Load(b + 112);
    }

    /// <summary>Σ (a[i] − b[i])² over <paramref name="length"/> floats when <paramref name="distance"/>,
    /// else Σ a[i]·b[i]. l2 ranks by the distance from the differences, which keeps its precision
    /// however far both vectors lie from the origin (the expanded ‖a‖² − 2a·b + ‖b‖² cancels there:
    /// at norm 1000 it cannot tell a distance of 0.01 from 0.05).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Measure(float* a, float* b, int length, bool distance) =>
        distance ? Sum<SquaredDifference>(a, b, length) : Sum<Product>(a, b, length);

    /// <summary><see cref="Measure"/>(a, b, 128, distance) with b held in registers: the same terms
    /// summed in the same order, so the same bits. A scan scores millions of rows against one query;
    /// reloading the query for each row and the general loop's bookkeeping cost the scan 8–10 % of
    /// its speed at d = 128 (standalone harness, W read from memory either way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float Measure128(float* a, in Query128 b, bool distance) =>
        distance ? Sum128<SquaredDifference>(a, in b) : Sum128<Product>(a, in b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Sum128<TTerm>(float* a, in Query128 b)
        where TTerm : struct, ITerm
    {
        Vector512<float> s0 = TTerm.Accumulate(Vector512.Load(a), b.B0, Vector512<float>.Zero);
        Vector512<float> s1 = TTerm.Accumulate(Vector512.Load(a + 16), b.B1, Vector512<float>.Zero);
        Vector512<float> s2 = TTerm.Accumulate(Vector512.Load(a + 32), b.B2, Vector512<float>.Zero);
        Vector512<float> s3 = TTerm.Accumulate(Vector512.Load(a + 48), b.B3, Vector512<float>.Zero);
        s0 = TTerm.Accumulate(Vector512.Load(a + 64), b.B4, s0);
        s1 = TTerm.Accumulate(Vector512.Load(a + 80), b.B5, s1);
        s2 = TTerm.Accumulate(Vector512.Load(a + 96), b.B6, s2);
        s3 = TTerm.Accumulate(Vector512.Load(a + 112), b.B7, s3);
        return Vector512.Sum((s0 + s1) + (s2 + s3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float Sum<TTerm>(float* a, float* b, int length)
        where TTerm : struct, ITerm
    {
        int i = 0;
        float sum;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            Vector512<float> s0 = Vector512<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 64 <= length; i += 64)
            {
                s0 = TTerm.Accumulate(Vector512.Load(a + i), Vector512.Load(b + i), s0);
                s1 = TTerm.Accumulate(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), s1);
                s2 = TTerm.Accumulate(Vector512.Load(a + i + 32), Vector512.Load(b + i + 32), s2);
                s3 = TTerm.Accumulate(Vector512.Load(a + i + 48), Vector512.Load(b + i + 48), s3);
            }

            for (; i + 16 <= length; i += 16)
            {
                s0 = TTerm.Accumulate(Vector512.Load(a + i), Vector512.Load(b + i), s0);
            }

            sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        else if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 32 <= length; i += 32)
            {
                s0 = TTerm.Accumulate(Vector256.Load(a + i), Vector256.Load(b + i), s0);
                s1 = TTerm.Accumulate(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), s1);
                s2 = TTerm.Accumulate(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), s2);
                s3 = TTerm.Accumulate(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), s3);
            }

            for (; i + 8 <= length; i += 8)
            {
                s0 = TTerm.Accumulate(Vector256.Load(a + i), Vector256.Load(b + i), s0);
            }

            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        else
        {
            sum = 0;
        }

        for (; i < length; i++)
        {
            sum = TTerm.Accumulate(a[i], b[i], sum);
        }

        return sum;
    }

    /// <summary>a·b.</summary>
    private readonly struct Product : ITerm
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Accumulate(Vector512<float> a, Vector512<float> b, Vector512<float> sum) => Vector512.FusedMultiplyAdd(a, b, sum);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Accumulate(Vector256<float> a, Vector256<float> b, Vector256<float> sum) => Vector256.FusedMultiplyAdd(a, b, sum);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Accumulate(float a, float b, float sum) => MathF.FusedMultiplyAdd(a, b, sum);
    }

    /// <summary>(a − b)².</summary>
    private readonly struct SquaredDifference : ITerm
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Accumulate(Vector512<float> a, Vector512<float> b, Vector512<float> sum)
        {
            Vector512<float> difference = a - b;
            return Vector512.FusedMultiplyAdd(difference, difference, sum);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Accumulate(Vector256<float> a, Vector256<float> b, Vector256<float> sum)
        {
            Vector256<float> difference = a - b;
            return Vector256.FusedMultiplyAdd(difference, difference, sum);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Accumulate(float a, float b, float sum)
        {
            float difference = a - b;
            return MathF.FusedMultiplyAdd(difference, difference, sum);
        }
    }
}
