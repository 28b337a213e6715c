using AssocDB.Engine.Learning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Learning;

// The engine's Adam replaces TorchSharp's (whose step frees its own scalars unsafely) and must
// train exactly as it did: the same parameters, bit for bit, after the same steps.
public sealed class AdamOptimizerTests
{
    [Fact]
    public void Steps_exactly_as_TorchSharps_Adam()
    {
        using Generator generator = new Generator(5);
        using Tensor start = randn([40, 8], generator: generator);
        using Tensor target = randn([40, 8], generator: generator);
        using var ours = new Parameter(start.clone(), requires_grad: true);
        using var theirs = new Parameter(start.clone(), requires_grad: true);
        using var adam = new AdamOptimizer([ours], 0.01);
        using optim.Optimizer reference = optim.Adam([theirs], 0.01);
        using Scalar cube = 3.ToScalar();
        void Backward(Tensor parameter)
        {
            using Tensor loss = parameter.sub(target).pow(cube).abs().sum();
            loss.backward();
        }

        for (int step = 0; step < 25; step++)
        {
            adam.ZeroGradients();
            Backward(ours);
            adam.Step();
            reference.zero_grad();
            Backward(theirs);
            reference.step();
        }

        float[] trained = ours.detach().data<float>().ToArray();
        Assert.Equal(theirs.detach().data<float>().ToArray(), trained);
        Assert.NotEqual(start.data<float>().ToArray(), trained);
    }
}
