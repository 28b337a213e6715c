using AssocDB.Engine.Model;

namespace AssocDB.Engine.Vectors;

/// <summary>How <see cref="VectorSearch"/> picks and configures kernels.</summary>
/// <param name="ScanBatchLimit">On a CPU, batches up to this many queries use the fused scan; larger
/// ones use the chunked GEMM. The scan reads W once per batch but its compute grows with the batch,
/// while the GEMM's fixed costs (conversion, topk passes) pay off only for many queries.</param>
/// <param name="GemmMinRows">Matrices with fewer rows are always scanned: the GEMM's fixed costs dominate.</param>
/// <param name="CoarseType">Element type of the coarse GEMM on float32 matrices. Float32 by default:
/// on the reference machine (2 shared cores, AVX512-FP16, no AMX) libtorch's float16 GEMM ran at most
/// ~1.3× float32 and the per-chunk conversions cost more than that saved, and bfloat16 ran slower
/// than float32. On AMX machines bfloat16 should win; the kernel bench's --coarse measures it.</param>
/// <param name="MaxDegreeOfParallelism">Threads for the scan and re-rank (0: one per core).</param>
public sealed record VectorSearchOptions(
    int ScanBatchLimit = 16,
    int GemmMinRows = 1 << 16,
    StoragePrecision CoarseType = StoragePrecision.Float32,
    int MaxDegreeOfParallelism = 0)
{
    /// <summary>The defaults.</summary>
    public static VectorSearchOptions Default { get; } = new();
}
