using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// 64-byte-aligned native blocks kept between searches for reuse by the int8 coarse pass.
/// Allocating and freeing blocks of a few hundred KB per batch makes glibc raise its mmap threshold
/// and serve them from arenas that fragment: the process's resident memory crept up by 5–11 MB over
/// tens of thousands of batches (and stopped growing with a fixed threshold). Reused blocks leave the
/// allocator alone. At most two per core are kept, and none larger than
/// <see cref="MaxPooledBytes"/> (a batch with a large k frees its blocks at once).
/// </summary>
internal static unsafe class NativeBlockPool
{
    private const long MaxPooledBytes = 4L << 20;

    private static readonly ConcurrentBag<Block> Spare = [];

    /// <summary>A block at least <paramref name="bytes"/> long, contents undefined.</summary>
    public static Block Rent(long bytes)
    {
        while (Spare.TryTake(out Block spare))
        {
            if (spare.Bytes >= bytes)
            {
                return spare;
            }

            NativeMemory.AlignedFree(spare.Pointer);
        }

        return new Block((byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64), bytes);
    }

    public static void Return(Block block)
    {
        if (block.Bytes <= MaxPooledBytes && Spare.Count < 2 * Environment.ProcessorCount)
        {
            Spare.Add(block);
        }
        else
        {
            NativeMemory.AlignedFree(block.Pointer);
        }
    }

    internal readonly struct Block(byte* pointer, long bytes)
    {
        public byte* Pointer { get; } = pointer;

        public long Bytes { get; } = bytes;
    }
}
