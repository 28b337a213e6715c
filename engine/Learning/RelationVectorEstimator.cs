using System.Runtime.Intrinsics;

namespace AssocDB.Engine.Learning;

/// <summary>
/// Closed-form relation vectors: the vector of relation r is the mean of <c>v(tail) − v(head)</c>
/// over r's facts ("the direction of the difference is the relation"). Keeps a running sum and a
/// count per relation, so adding or removing a fact costs O(d).
/// </summary>
/// <remarks>
/// Each sum is kept as an unevaluated pair of doubles (the rounded sum and the error of every
/// rounding, found exactly by TwoSum) because removal subtracts: with plain double sums, vectors of
/// mixed scales (some concepts near 1e4, others near 1e-4) left the residue of their large terms in
/// a relation once only small ones remained, hundreds of float32 ulps off the true mean after
/// 100,000 adds and removes, and different from the sums a reopen rebuilds from the stored facts in
/// another order. The pair holds the exact sum unless the errors themselves outgrow 53 bits, so the
/// mean does not depend on the history that led to it. A removal must pass the same head and tail
/// vectors its addition did; when concept vectors change, rebuild with <see cref="Clear"/> and
/// <see cref="AddRange"/>. Not thread-safe: the owner serialises writes.
/// </remarks>
public sealed class RelationVectorEstimator
{
    private double[] _sums;
    private double[] _errors;
    private long[] _counts;

    /// <summary>Creates an estimator for vectors of dimension <paramref name="dimension"/>.</summary>
    public RelationVectorEstimator(int dimension, int relationCapacity = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(relationCapacity, 1);
        Dimension = dimension;
        _sums = new double[relationCapacity * dimension];
        _errors = new double[relationCapacity * dimension];
        _counts = new long[relationCapacity];
    }

    /// <summary>Vector dimension d.</summary>
    public int Dimension { get; }

    /// <summary>Number of facts currently counted for a relation (0 for one never seen).</summary>
    public long Count(int relation) => relation >= 0 && relation < _counts.Length ? _counts[relation] : 0;

    /// <summary>Adds one fact's difference <c>tail − head</c> to its relation.</summary>
    public void Add(int relation, ReadOnlySpan<float> head, ReadOnlySpan<float> tail) => Accumulate(relation, head, tail, +1);

    /// <summary>Removes a fact added earlier with the same vectors. Returns false, changing nothing,
    /// when the relation has no facts left to remove.</summary>
    public bool Remove(int relation, ReadOnlySpan<float> head, ReadOnlySpan<float> tail)
    {
        if (Count(relation) == 0)
        {
            return false;
        }

        Accumulate(relation, head, tail, -1);
        return true;
    }

    /// <summary>Adds many facts whose concept vectors are rows of <paramref name="concepts"/>
    /// (row-major, <c>[n, d]</c>).</summary>
    public void AddRange(ReadOnlySpan<Triple> facts, ReadOnlySpan<float> concepts)
    {
        if (concepts.Length % Dimension != 0)
        {
            throw new ArgumentException($"concept matrix length {concepts.Length} is not a multiple of d = {Dimension}", nameof(concepts));
        }

        int d = Dimension;
        foreach (Triple fact in facts)
        {
            Add(fact.Relation, concepts.Slice(fact.Head * d, d), concepts.Slice(fact.Tail * d, d));
        }
    }

    /// <summary>Forgets every fact.</summary>
    public void Clear()
    {
        Array.Clear(_sums);
        Array.Clear(_errors);
        Array.Clear(_counts);
    }

    /// <summary>Writes the mean difference of a relation into <paramref name="destination"/>.
    /// Returns false, writing nothing, when the relation has no facts (its vector is undefined).</summary>
    public bool TryGetVector(int relation, Span<float> destination)
    {
        if (destination.Length != Dimension)
        {
            throw new ArgumentException($"destination must hold d = {Dimension} floats", nameof(destination));
        }

        long count = Count(relation);
        if (count == 0)
        {
            return false;
        }

        ReadOnlySpan<double> sum = _sums.AsSpan(relation * Dimension, Dimension);
        ReadOnlySpan<double> error = _errors.AsSpan(relation * Dimension, Dimension);
        for (int i = 0; i < Dimension; i++)
        {
            // One rounding of the exact sum, whichever pair holds it.
            destination[i] = (float)((sum[i] + error[i]) / count);
        }

        return true;
    }

    /// <summary>Computes every relation's mean difference in one pass: <c>[relationCount, d]</c>
    /// row-major; relations without facts get zero vectors.</summary>
    public static float[] Estimate(ReadOnlySpan<Triple> facts, ReadOnlySpan<float> concepts, int relationCount, int dimension)
    {
        var estimator = new RelationVectorEstimator(dimension, Math.Max(1, relationCount));
        estimator.AddRange(facts, concepts);
        float[] vectors = new float[relationCount * dimension];
        for (int r = 0; r < relationCount; r++)
        {
            estimator.TryGetVector(r, vectors.AsSpan(r * dimension, dimension));
        }

        return vectors;
    }

    private void Accumulate(int relation, ReadOnlySpan<float> head, ReadOnlySpan<float> tail, int sign)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(relation);
        if (head.Length != Dimension || tail.Length != Dimension)
        {
            throw new ArgumentException($"head and tail must hold d = {Dimension} floats");
        }

        EnsureCapacity(relation + 1);
        Span<double> sum = _sums.AsSpan(relation * Dimension, Dimension);
        Span<double> error = _errors.AsSpan(relation * Dimension, Dimension);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            // The same operations as the scalar loop, eight lanes at a time (widened to double before
            // subtracting, and ±1 multiplies exactly), so the sums do not depend on the path taken.
            Vector256<double> signs = Vector256.Create((double)sign);
            for (; i <= Dimension - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                (Vector256<double> headLow, Vector256<double> headHigh) = Vector256.Widen(Vector256.Create(head.Slice(i, Vector256<float>.Count)));
                (Vector256<double> tailLow, Vector256<double> tailHigh) = Vector256.Widen(Vector256.Create(tail.Slice(i, Vector256<float>.Count)));
                Add(sum.Slice(i, Vector256<double>.Count), error.Slice(i, Vector256<double>.Count), signs * (tailLow - headLow));
                int high = i + Vector256<double>.Count;
                Add(sum.Slice(high, Vector256<double>.Count), error.Slice(high, Vector256<double>.Count), signs * (tailHigh - headHigh));
            }
        }

        for (; i < Dimension; i++)
        {
            double term = sign * ((double)tail[i] - head[i]);
            double total = sum[i] + term;
            double rounded = total - sum[i];
            error[i] += (sum[i] - (total - rounded)) + (term - rounded);
            sum[i] = total;
        }

        _counts[relation] += sign;
        if (_counts[relation] == 0)
        {
            // The last fact is gone: a relation added again starts from zero whatever was left.
            sum.Clear();
            error.Clear();
        }
    }

    /// <summary>Adds <paramref name="term"/> to the sums and the rounding error (TwoSum, exact) to
    /// the errors; the scalar loop in <see cref="Accumulate"/> does the same per lane.</summary>
    private static void Add(Span<double> sums, Span<double> errors, Vector256<double> term)
    {
        Vector256<double> sum = Vector256.Create(sums);
        Vector256<double> total = sum + term;
        Vector256<double> rounded = total - sum;
        (Vector256.Create(errors) + ((sum - (total - rounded)) + (term - rounded))).CopyTo(errors);
        total.CopyTo(sums);
    }

    private void EnsureCapacity(int relations)
    {
        if (relations <= _counts.Length)
        {
            return;
        }

        int capacity = Math.Max(relations, _counts.Length * 2);
        Array.Resize(ref _counts, capacity);
        Array.Resize(ref _sums, capacity * Dimension);
        Array.Resize(ref _errors, capacity * Dimension);
    }
}
