using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Direct access to a CPU tensor's memory, the equivalent of PyTorch's <c>data_ptr()</c>, which
/// TorchSharp 0.107 exposes only through element accessors. The fused scan reads W in place through
/// it instead of copying 512 MB per query.
/// </summary>
internal static partial class TensorMemory
{
    /// <summary>Pointer to the first element of a contiguous CPU float32 tensor. Valid while the
    /// tensor lives and is not resized; the caller guarantees both (the matrix's read lock).</summary>
    public static unsafe float* Float32Pointer(Tensor tensor)
    {
        if (tensor.device_type != TorchSharp.DeviceType.CPU || tensor.dtype != ScalarType.Float32 || !tensor.is_contiguous())
        {
            throw new InvalidOperationException("direct memory access needs a contiguous CPU float32 tensor");
        }

        IntPtr data = Data(tensor.Handle);
        return data == IntPtr.Zero ? throw new InvalidOperationException("the tensor has no storage") : (float*)data;
    }

    // The same native entry point TorchSharp's TensorAccessor uses (it returns the address of the
    // tensor's first element, storage offset included); the library is already loaded by TorchSharp.
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    private static partial IntPtr Data(IntPtr tensor);
}
