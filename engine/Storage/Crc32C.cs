using System.Numerics;
using System.Runtime.InteropServices;

namespace AssocDB.Engine.Storage;

/// <summary>CRC-32C (Castagnoli), with the CPU's CRC instruction where it has one.</summary>
internal static class Crc32C
{
    public static uint Of(ReadOnlySpan<byte> bytes)
    {
        uint crc = uint.MaxValue;
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(bytes);
        foreach (ulong word in words)
        {
            crc = BitOperations.Crc32C(crc, word);
        }

        foreach (byte tail in bytes[(words.Length * sizeof(ulong))..])
        {
            crc = BitOperations.Crc32C(crc, tail);
        }

        return ~crc;
    }
}
