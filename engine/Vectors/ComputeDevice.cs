using TorchSharp;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Resolves the configured device name (<c>auto</c>, <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>) to a
/// TorchSharp device. <c>auto</c> picks the first CUDA device when one is usable, else the CPU.
/// </summary>
public static class ComputeDevice
{
    /// <summary>Parses a device name; returns false with a reason when it is malformed or unavailable.</summary>
    public static bool TryResolve(string name, out torch.Device device, out string error)
    {
        device = torch.CPU;
        error = "";
        string normalized = name.Trim().ToLowerInvariant();
        if (normalized is "auto")
        {
            device = torch.cuda.is_available() ? torch.CUDA : torch.CPU;
            return true;
        }

        if (normalized is "cpu")
        {
            return true;
        }

        if (normalized == "cuda" || normalized.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
            {
                error = $"device '{name}' requested but no CUDA device is available (this build uses {TorchBackendName})";
                return false;
            }

            int index = 0;
            if (normalized.Length > 4 && (!int.TryParse(normalized.AsSpan(5), out index) || index < 0 || index >= torch.cuda.device_count()))
            {
                error = $"device '{name}': index must be 0..{torch.cuda.device_count() - 1}";
                return false;
            }

            device = new torch.Device(DeviceType.CUDA, index);
            return true;
        }

        error = $"device '{name}' is not one of auto, cpu, cuda, cuda:N";
        return false;
    }

    private static string TorchBackendName => torch.cuda.is_available() ? "a CUDA build" : "the CPU build of TorchSharp";
}
