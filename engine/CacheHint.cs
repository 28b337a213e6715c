using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace AssocDB.Engine;

/// <summary>
/// Asks the CPU to start loading a cache line, so that a loop over many random addresses (names,
/// adjacency lists, rows of W) overlaps their misses instead of waiting for each in turn. A hint
/// only: nothing where the CPU has no prefetch instruction, and a stale address (an object the GC
/// moved meanwhile) costs nothing but the miss it was meant to save.
/// </summary>
internal static class CacheHint
{
    /// <summary>Whether the hints do anything here (callers skip the work of computing addresses).</summary>
    public static bool Supported => Sse.IsSupported;

    public static unsafe void Prefetch<T>(ref T at) => Prefetch(Unsafe.AsPointer(ref at));

    public static unsafe void Prefetch(void* at)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(at);
        }
    }
}
