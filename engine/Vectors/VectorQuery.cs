using AssocDB.Engine.Model;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// A search query as vector arithmetic: a raw vector or a concept row, plus and minus relation
/// vectors. <c>c + r</c> asks "what is r of c?", <c>c − r</c> "whose r is c?". A relation applies
/// as a translation, or (RotatE) as a rotation of the complex coordinates — real parts in the first
/// half of the row, imaginary in the second — by its d/2 phases. Immutable; each
/// <see cref="Plus"/>/<see cref="Minus"/> returns a new query.
/// </summary>
public sealed class VectorQuery
{
    private readonly float[]? _vector;
    private readonly int _concept;
    private readonly (float[] Vector, float Sign, bool Rotation)[] _terms;

    private VectorQuery(float[]? vector, int concept, (float[], float, bool)[] terms)
    {
        _vector = vector;
        _concept = concept;
        _terms = terms;
    }

    /// <summary>The concept rows the query was built from (to exclude from its results).</summary>
    public IReadOnlyList<int> ConceptRows => _vector is null ? [_concept] : [];

    /// <summary>A query that is this vector.</summary>
    public static VectorQuery FromVector(ReadOnlySpan<float> vector) => new(vector.ToArray(), -1, []);

    /// <summary>A query that starts at a concept's row.</summary>
    public static VectorQuery FromConcept(int row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        return new VectorQuery(null, row, []);
    }

    /// <summary>This query plus a relation vector (forward: <c>c + r</c>), or rotated by it.</summary>
    public VectorQuery Plus(ReadOnlySpan<float> relation, bool rotation = false) => new(_vector, _concept, [.. _terms, (relation.ToArray(), 1f, rotation)]);

    /// <summary>This query minus a relation vector (reverse: <c>c − r</c>), or rotated back by it.</summary>
    public VectorQuery Minus(ReadOnlySpan<float> relation, bool rotation = false) => new(_vector, _concept, [.. _terms, (relation.ToArray(), -1f, rotation)]);

    /// <summary>Builds the query vector against a matrix. Returns NotFound when the concept row is
    /// not live and InvalidArgument when a vector has the wrong length.</summary>
    public Result<float[]> Build(ConceptMatrix matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (_vector is null && !matrix.IsLive(_concept))
        {
            return EngineError.NotFound("concept", $"row {_concept} holds no concept");
        }

        float[] result = _vector is null ? matrix.GetRow(_concept) : (float[])_vector.Clone();
        if (result.Length != matrix.Dimension)
        {
            return EngineError.Invalid("vector", $"expected {matrix.Dimension} floats, got {result.Length}");
        }

        for (int t = 0; t < _terms.Length; t++)
        {
            (float[] term, float sign, bool rotation) = _terms[t];
            int expected = rotation ? matrix.Dimension / 2 : matrix.Dimension;
            if (term.Length != expected || (rotation && matrix.Dimension % 2 != 0))
            {
                return EngineError.Invalid(sign > 0 ? "plus" : "minus", $"relation vector has {term.Length} floats, expected {expected}");
            }

            if (rotation)
            {
                Rotate(result, term, sign);
            }
            else
            {
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] += sign * term[i];
                }
            }
        }

        return result;
    }

    /// <summary>Multiplies each complex coordinate by e^(i·sign·θ).</summary>
    private static void Rotate(float[] vector, float[] phases, float sign)
    {
        int half = phases.Length;
        for (int i = 0; i < half; i++)
        {
            double angle = sign * phases[i];
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            double real = vector[i], imaginary = vector[i + half];
            vector[i] = (float)((real * cos) - (imaginary * sin));
            vector[i + half] = (float)((real * sin) + (imaginary * cos));
        }
    }
}
