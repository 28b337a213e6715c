namespace AssocDB.Engine.Model;

/// <summary>How similarity between a query and a concept vector is scored; higher is closer.</summary>
public enum Metric
{
    /// <summary>Cosine similarity: dot product of the normalized vectors.</summary>
    Cosine,

    /// <summary>Raw dot product.</summary>
    Dot,

    /// <summary>Negated squared Euclidean distance, computed as <c>2w·q − ‖w‖² − ‖q‖²</c>.</summary>
    L2,
}

/// <summary>Element type the concept matrix is stored in on the device.</summary>
public enum StoragePrecision
{
    /// <summary>32-bit floats; results are exact.</summary>
    Float32,

    /// <summary>16-bit floats; candidates are re-ranked in float32 so results equal float32 search.</summary>
    Float16,

    /// <summary>bfloat16; candidates are re-ranked in float32 so results equal float32 search.</summary>
    BFloat16,
}
