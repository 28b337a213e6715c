using System.Buffers;

namespace AssocDB.Server.Mapping;

/// <summary>Reads protobuf wire bytes without parsing them into messages.</summary>
internal static class WireScan
{
    /// <summary>How many times top-level field <paramref name="field"/> occurs in the message,
    /// counted up to where the bytes stop being readable (the parser then refuses them).</summary>
    public static int Occurrences(ReadOnlySequence<byte> message, int field)
    {
        var reader = new SequenceReader<byte>(message);
        int count = 0;
        while (!reader.End && TryReadVarint(ref reader, out ulong tag))
        {
            count += tag >> 3 == (ulong)field ? 1 : 0;
            bool skipped = (tag & 7) switch
            {
                0 => TryReadVarint(ref reader, out _),
                1 => TryAdvance(ref reader, 8),
                2 => TryReadVarint(ref reader, out ulong length) && TryAdvance(ref reader, length),
                5 => TryAdvance(ref reader, 4),
                _ => false, // groups (deprecated, unused by these messages) and invalid wire types
            };
            if (!skipped)
            {
                break;
            }
        }

        return count;
    }

    private static bool TryAdvance(ref SequenceReader<byte> reader, ulong count)
    {
        if (count > (ulong)reader.Remaining)
        {
            return false;
        }

        reader.Advance((long)count);
        return true;
    }

    private static bool TryReadVarint(ref SequenceReader<byte> reader, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && reader.TryRead(out byte b); shift += 7)
        {
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        return false;
    }
}
