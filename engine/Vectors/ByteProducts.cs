namespace AssocDB.Engine.Vectors;

/// <summary>The instructions <see cref="Int8CoarseScorer"/> multiplies query codes by row bytes with.</summary>
internal enum ByteProducts
{
    /// <summary>AVX-VNNI's <c>vpdpbusd</c>: four byte products summed into each int32 lane in one
    /// instruction (Intel since Alder Lake and Sapphire Rapids).</summary>
    AvxVnni,

    /// <summary>AVX-512BW's <c>vpmaddwd</c> on the row bytes sign-extended to int16 (<c>vpmovsxbw</c>),
    /// by int16 query codes: pairs of products summed into int32, on every AVX-512 CPU (AMD Zen 4 has
    /// VNNI only in its EVEX form, which .NET 10 does not expose outside AVX10). Two multiplies do the
    /// work of one vpdpbusd, and queries get 12-bit codes where bytes give 8.</summary>
    Avx512BW,
}
