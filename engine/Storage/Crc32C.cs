using System.Numerics;
using System.Runtime.InteropServices;

namespace AssocDB.Engine.Storage;

/// <summary>CRC-32C (Castagnoli), with the CPU's CRC instruction where it has one.</summary>
internal static class Crc32C
{
    public static uint Of(ReadOnlySpan<byte> bytes) => ~Append(uint.MaxValue, bytes);

    /// <summary>The checksum of <paramref name="first"/> followed by <paramref name="second"/>,
    /// without copying them together.</summary>
    public static uint Of(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second) => ~Append(Append(uint.MaxValue, first), second);

    private static uint Append(uint crc, ReadOnlySpan<byte> bytes)
    {
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(bytes);
        foreach (ulong word in words)
        {
            crc = BitOperations.Crc32C(crc, word);
        }

        foreach (byte tail in bytes[(words.Length * sizeof(ulong))..])
        {
            crc = BitOperations.Crc32C(crc, tail);
        }

        return crc;
    }
}
