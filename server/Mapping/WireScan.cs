using System.Buffers;

namespace AssocDB.Server.Mapping;

/// <summary>Reads protobuf wire bytes without parsing them into messages.</summary>
internal static class WireScan
{
    /// <summary>Groups nested deeper than this are not parsed either (the parser's recursion limit).</summary>
    private const int MaxGroupDepth = 100;

    /// <summary>
    /// How many times top-level field <paramref name="field"/> occurs in the message, counted up to
    /// where the bytes stop being readable (the parser then refuses them). Bytes are read as
    /// Google.Protobuf reads them, or a message could hold items the count does not see: it reads
    /// a tag or a length as a 32-bit varint, dropping higher bits (a tag with bit 32 set is still
    /// the field's), and skips an unknown group whole, parsing on after it (a scan that stopped at
    /// one let a batch of any size through to the parser).
    /// </summary>
    public static int Occurrences(ReadOnlySequence<byte> message, int field) => Occurrences(message, [field]);

    /// <summary>
    /// How many times the field at <paramref name="path"/> occurs: <c>[3, 1]</c> counts field 1 of
    /// every occurrence of message field 3 (occurrences of a message field merge as the parser merges
    /// them, so their counts add up). Read as <see cref="Occurrences(ReadOnlySequence{byte}, int)"/>
    /// reads, at every level.
    /// </summary>
    public static int Occurrences(ReadOnlySequence<byte> message, ReadOnlySpan<int> path)
    {
        var reader = new SequenceReader<byte>(message);
        int count = 0;
        // The field numbers of the groups open where the reader is: fields within them are not top level.
        var groups = new Stack<uint>();
        while (!reader.End && TryReadVarint(ref reader, out ulong read))
        {
            uint tag = (uint)read;
            uint number = tag >> 3;
            bool onPath = groups.Count == 0 && number == (uint)path[0];
            count += onPath && path.Length == 1 ? 1 : 0;
            bool skipped = (tag & 7) switch
            {
                0 => TryReadVarint(ref reader, out _),
                1 => TryAdvance(ref reader, 8),
                2 => TryReadVarint(ref reader, out ulong length) && (uint)length <= int.MaxValue && (uint)length <= reader.Remaining
                    && Within(ref reader, (uint)length, onPath && path.Length > 1 ? path[1..] : [], ref count),
                3 => groups.Count < MaxGroupDepth && Open(groups, number),
                4 => groups.TryPop(out uint open) && open == number,
                5 => TryAdvance(ref reader, 4),
                _ => false, // invalid wire types
            };
            if (!skipped)
            {
                break;
            }
        }

        return count;
    }

    /// <summary>Adds the occurrences of <paramref name="path"/> within the next
    /// <paramref name="length"/> bytes (none for an empty path) to <paramref name="count"/>, and skips them.</summary>
    private static bool Within(ref SequenceReader<byte> reader, uint length, ReadOnlySpan<int> path, ref int count)
    {
        if (!path.IsEmpty)
        {
            count += Occurrences(reader.UnreadSequence.Slice(0, length), path);
        }

        return TryAdvance(ref reader, length);
    }

    private static bool Open(Stack<uint> groups, uint number)
    {
        groups.Push(number);
        return true;
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
