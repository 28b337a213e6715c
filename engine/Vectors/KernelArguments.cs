namespace AssocDB.Engine.Vectors;

/// <summary>Argument checks shared by the kernels. Kernels are given valid requests by
/// <see cref="VectorSearch"/>, so a failure here is a caller bug and throws.</summary>
internal static class KernelArguments
{
    /// <summary>Throws unless k ≥ 1 and the query buffer is a non-empty multiple of d.</summary>
    public static void Check(ConceptMatrix matrix, ReadOnlySpan<float> queries, int k)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if (queries.IsEmpty || queries.Length % matrix.Dimension != 0)
        {
            throw new ArgumentException($"query buffer of {queries.Length} floats is not a non-empty multiple of d = {matrix.Dimension}", nameof(queries));
        }
    }
}
