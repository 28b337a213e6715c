namespace AssocDB.Engine.Vectors;

/// <summary>
/// One way of computing exact top-k over a <see cref="ConceptMatrix"/>. Kernels differ in where and
/// how they compute (a fused CPU scan, chunked low-precision GEMM with float32 re-rank, a device
/// matmul + topk) but agree on the result: the k best live, non-excluded, allowed rows by the
/// matrix's metric, as float32 brute force would rank them (ties aside), score descending then row
/// ascending. <see cref="VectorSearch"/> picks one per device and batch size.
/// </summary>
/// <remarks>Callers hold the matrix's read lock for the whole call; kernels never write to it.</remarks>
public interface ISearchKernel
{
    /// <summary>A short name for logs and benchmarks.</summary>
    string Name { get; }

    /// <summary>Whether the kernel can run on this matrix (its device and memory layout).</summary>
    bool Supports(ConceptMatrix matrix);

    /// <summary>Searches <paramref name="queries"/> (row-major [count, d], raw vectors) for the top
    /// <paramref name="k"/> rows each. Arguments must already be valid (k ≥ 1, length a multiple of
    /// d); invalid ones are caller bugs and throw.</summary>
    SearchHits[] Search(ConceptMatrix matrix, ReadOnlySpan<float> queries, int k, SearchFilter? filter = null);
}
