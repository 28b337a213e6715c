namespace AssocDB.Engine.Vectors;

/// <summary>Arithmetic of <see cref="ChunkedGemmKernel"/>'s coarse pass, whose candidates are then
/// re-ranked exactly in float32, so the choice changes speed, never results.</summary>
public enum CoarsePrecision
{
    /// <summary>Int8 where the CPU has AVX-512 (F and BW); otherwise the matrix's low-precision search copy if
    /// it has one, else float32.</summary>
    Auto,

    /// <summary>8-bit integers (<see cref="Int8CoarseScorer"/>), multiplied with AVX-VNNI where the CPU
    /// has it and with AVX-512BW otherwise; needs a CPU with AVX-512 (F and BW).</summary>
    Int8,

    /// <summary>libtorch float32 GEMM.</summary>
    Float32,

    /// <summary>libtorch float16 GEMM on unit-normalized rows and queries.</summary>
    Float16,

    /// <summary>libtorch bfloat16 GEMM on unit-normalized rows and queries.</summary>
    BFloat16,
}
