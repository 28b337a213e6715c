using AssocDB.Engine.Vectors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AssocDB.Engine.Learning;

/// <summary>
/// Adam (Kingma and Ba 2015) with PyTorch's defaults (β₁ 0.9, β₂ 0.999, ε 1e-8, no weight decay),
/// computed step for step as TorchSharp's <c>optim.Adam</c> computes it, but with every
/// <see cref="Scalar"/> it passes to libtorch held here: TorchSharp's own step converts its
/// hyperparameters implicitly, and a collection during the native call can free them under
/// libtorch (see <see cref="TorchScalars"/>).
/// </summary>
internal sealed class AdamOptimizer : IDisposable
{
    private const double Beta1 = 0.9;
    private const double Beta2 = 0.999;
    private const double Epsilon = 1e-8;

    private readonly Parameter[] _parameters;
    private readonly Tensor[] _means;
    private readonly Tensor[] _squares;

    /// <summary>Steps taken per parameter (a parameter without a gradient is not stepped).</summary>
    private readonly long[] _steps;
    private readonly double _learningRate;
    private readonly Scalar _beta1 = Beta1.ToScalar();
    private readonly Scalar _oneMinusBeta1 = (1 - Beta1).ToScalar();
    private readonly Scalar _beta2 = Beta2.ToScalar();
    private readonly Scalar _oneMinusBeta2 = (1 - Beta2).ToScalar();
    private readonly Scalar _epsilon = Epsilon.ToScalar();

    public AdamOptimizer(Parameter[] parameters, double learningRate)
    {
        _parameters = parameters;
        _learningRate = learningRate;
        _means = [.. parameters.Select(parameter => zeros_like(parameter).DetachFromDisposeScope())];
        _squares = [.. parameters.Select(parameter => zeros_like(parameter).DetachFromDisposeScope())];
        _steps = new long[parameters.Length];
    }

    /// <summary>Zeroes the parameters' gradients before the next backward pass.</summary>
    public void ZeroGradients()
    {
        foreach (Parameter parameter in _parameters)
        {
            using Tensor? gradient = parameter.grad;
            gradient?.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient.</summary>
    public void Step()
    {
        using IDisposable noGrad = no_grad();
        for (int i = 0; i < _parameters.Length; i++)
        {
            using Tensor? gradient = _parameters[i].grad;
            if (gradient is null)
            {
                continue;
            }

            long step = ++_steps[i];
            double biasCorrection1 = 1 - Math.Pow(Beta1, step);
            double biasCorrection2 = 1 - Math.Pow(Beta2, step);
            _means[i].mul_(_beta1).add_(gradient, _oneMinusBeta1);
            _squares[i].mul_(_beta2).addcmul_(gradient, gradient, _oneMinusBeta2);
            using Scalar rootBiasCorrection2 = Math.Sqrt(biasCorrection2).ToScalar();
            using Scalar negativeStepSize = (-(_learningRate / biasCorrection1)).ToScalar();
            using Tensor root = _squares[i].sqrt();
            using Tensor denominator = root.div(rootBiasCorrection2).add_(_epsilon, TorchScalars.One);
            _parameters[i].addcdiv_(_means[i], denominator, negativeStepSize);
        }
    }

    public void Dispose()
    {
        foreach (Tensor moment in _means.Concat(_squares))
        {
            moment.Dispose();
        }

        _beta1.Dispose();
        _oneMinusBeta1.Dispose();
        _beta2.Dispose();
        _oneMinusBeta2.Dispose();
        _epsilon.Dispose();
    }
}
