namespace AssocDB.Engine.Vectors;

/// <summary>How <see cref="VectorSearch"/> picks and configures kernels.</summary>
/// <param name="ScanBatchLimit">On a CPU, batches up to this many queries use the fused scan; larger
/// ones use the chunked GEMM. The scan reads W once per batch but its compute grows with the batch,
/// while the GEMM's fixed costs (quantizing or converting W, topk passes) pay off only for several
/// queries. Null picks the crossover of the coarse pass in use (the kernel bench's --crossover, at
/// d = 128): 2 for int8 with AVX-VNNI's products, 5 with AVX-512BW's, 16 for libtorch's float GEMM
/// (see <see cref="VectorSearch.CrossoverBatch"/>).</param>
/// <param name="GemmMinRows">Matrices with fewer rows are always scanned: the GEMM's fixed costs dominate.</param>
/// <param name="CoarseType">Arithmetic of the GEMM kernel's coarse pass (results are exact either
/// way). Auto by default: int8 where the CPU has AVX-512 (multiplied with AVX-VNNI where it has that too), which on the reference machine
/// (2 shared cores, no AMX) runs several times faster than libtorch's float32 GEMM, while libtorch's
/// float16 ran at most ~1.3× float32 and bfloat16 slower than float32; elsewhere the matrix's
/// search copy or float32. The kernel bench's --coarse measures each.</param>
/// <param name="MaxDegreeOfParallelism">Threads for the scan and re-rank (0: one per core).</param>
public sealed record VectorSearchOptions(
    int? ScanBatchLimit = null,
    int GemmMinRows = 1 << 16,
    CoarsePrecision CoarseType = CoarsePrecision.Auto,
    int MaxDegreeOfParallelism = 0)
{
    /// <summary>The defaults.</summary>
    public static VectorSearchOptions Default { get; } = new();
}
