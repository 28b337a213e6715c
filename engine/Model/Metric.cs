namespace AssocDB.Engine.Model;

/// <summary>How similarity between a query and a concept vector is scored; higher is closer.</summary>
public enum Metric
{
    /// <summary>Cosine similarity: dot product of the normalized vectors.</summary>
    Cosine,

    /// <summary>Raw dot product.</summary>
    Dot,

    /// <summary>Negated squared Euclidean distance, <c>−‖w − q‖²</c>, summed from the differences (the
    /// expanded <c>2w·q − ‖w‖² − ‖q‖²</c> only ranks candidates, which are then scored exactly).</summary>
    L2,
}

/// <summary>Element type of the concept matrix's search copy: W itself stays float32 (the source of
/// reads and exact scores), and a lower precision adds a copy of the normalized rows in that type
/// (half W's memory again), which the CPU GEMM kernel's coarse pass scans where it takes the copy
/// (its default on CPUs without AVX-512, whose int8 pass is faster still; a GPU scans W).</summary>
public enum StoragePrecision
{
    /// <summary>No copy; results are exact.</summary>
    Float32,

    /// <summary>A float16 copy; candidates are re-ranked in float32 so results equal float32 search.</summary>
    Float16,

    /// <summary>A bfloat16 copy; candidates are re-ranked in float32 so results equal float32 search.</summary>
    BFloat16,
}
