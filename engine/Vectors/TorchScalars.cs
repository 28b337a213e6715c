using TorchSharp;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The constant <see cref="Scalar"/>s the engine passes to TorchSharp. Every Scalar argument in the
/// engine is one of these, a <c>using</c> local or a field, never a number converted implicitly.
/// </summary>
/// <remarks>
/// A Scalar made by an implicit conversion (<c>t.mul(0.5f)</c>, <c>t + 1</c>, <c>t.gt(0)</c>) is
/// unreachable once TorchSharp has read its handle, so a collection during the native call may run
/// its finalizer, which frees the native scalar while libtorch still reads it (seen under load as
/// "Exception raised from toFloat"; dotnet/TorchSharp#1496). TorchSharp 0.107 does the same inside
/// some overloads, so the engine avoids those too: <c>add(t)</c>, <c>add(s)</c> and the <c>+</c>
/// operator pass an implicit alpha of 1 (call <c>add(t, One)</c>), <c>square()</c> an exponent of 2
/// (call <c>pow(Two)</c>), and the operators that take a number convert it. These constants live as
/// long as the process and libtorch only reads them, so any thread may share them. TorchSharp's own
/// <c>Adam.step</c> converts its hyperparameters the same way, so training steps with
/// <see cref="Learning.AdamOptimizer"/> instead.
/// </remarks>
internal static class TorchScalars
{
    /// <summary>The integer 0.</summary>
    public static readonly Scalar Zero = 0.ToScalar();

    /// <summary>The integer 1: the alpha of a plain addition.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>The integer 2: the exponent of a square.</summary>
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary>The float −∞: the score of a row that must never be found.</summary>
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();

    /// <summary>The smallest positive float: the least divisor of a norm.</summary>
    public static readonly Scalar FloatEpsilon = float.Epsilon.ToScalar();
}
