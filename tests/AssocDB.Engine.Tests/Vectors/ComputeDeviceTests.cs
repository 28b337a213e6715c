using AssocDB.Engine.Vectors;
using TorchSharp;

namespace AssocDB.Engine.Tests.Vectors;

// Guards the device option: auto falls back to the CPU without a GPU, cuda is refused with a reason
// when none is usable, and malformed names are refused naming what is accepted.
public sealed class ComputeDeviceTests
{
    [Fact]
    public void Auto_and_cpu_resolve_and_cuda_needs_a_usable_device()
    {
        Assert.True(ComputeDevice.TryResolve("cpu", out torch.Device cpu, out _));
        Assert.Equal(DeviceType.CPU, cpu.type);
        Assert.True(ComputeDevice.TryResolve(" AUTO ", out torch.Device auto, out _));
        Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, auto.type);

        if (!torch.cuda.is_available())
        {
            Assert.False(ComputeDevice.TryResolve("cuda", out _, out string error));
            Assert.Contains("no CUDA device", error, StringComparison.Ordinal);
            Assert.False(ComputeDevice.TryResolve("cuda:0", out _, out _));
        }
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("")]
    [InlineData("cuda0")]
    public void Unknown_device_names_are_refused(string name)
    {
        Assert.False(ComputeDevice.TryResolve(name, out _, out string error));
        Assert.Contains("auto, cpu, cuda, cuda:N", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Opening_a_database_on_an_unknown_device_fails_clearly()
    {
        using var folder = new Support.TempDirectory();
        var error = Assert.Throws<ArgumentException>(() => AssocDatabase.Open(new DatabaseOptions { DataDirectory = folder.Path, Device = "tpu" }));
        Assert.Contains("tpu", error.Message, StringComparison.Ordinal);
    }
}
