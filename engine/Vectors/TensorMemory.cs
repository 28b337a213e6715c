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

    /// <summary>Asks Linux to back the whole 2 MiB pages inside [<paramref name="start"/>,
    /// start + <paramref name="bytes"/>) with transparent huge pages, for allocations of 32 MiB or
    /// more. Call it before the memory is first written: pages already touched stay 4 KiB until the
    /// kernel's background collapse.</summary>
    /// <remarks>A pass over W touches a new 4 KiB page every 8 rows at d = 128; with 4 KiB pages each
    /// costs a TLB miss and a page walk, and 512 MB of W is 131 072 of them. On 2 MiB pages a read
    /// of W took 17–19 ms against 22–23 ms in a standalone harness. Where the kernel has huge pages
    /// off (or the call is refused) nothing changes: the advice is only a hint.</remarks>
    public static void AdviseHugePages(nint start, long bytes)
    {
        const long hugePage = 2L << 20;
        long first = (start + hugePage - 1) & ~(hugePage - 1);
        long last = (start + bytes) & ~(hugePage - 1);
        if (OperatingSystem.IsLinux() && bytes >= MinAdvisedBytes && last > first)
        {
            _ = Madvise((nint)first, (nuint)(last - first), MadviseHugePage);
        }
    }

    private const int MadviseHugePage = 14;

    /// <summary>glibc serves allocations from this size up (its largest mmap threshold) with a
    /// mapping of their own. A smaller one may come from the heap, where the advice would outlive
    /// the tensor and make later small allocations take whole huge pages.</summary>
    private const long MinAdvisedBytes = 32L << 20;

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);

    // The same native entry point TorchSharp's TensorAccessor uses (it returns the address of the
    // tensor's first element, storage offset included); the library is already loaded by TorchSharp.
    [LibraryImport("LibTorchSharp", EntryPoint = "THSTensor_data")]
    private static partial IntPtr Data(IntPtr tensor);
}
