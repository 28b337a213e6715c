using System.Buffers.Binary;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Tests.Support;

/// <summary>Writes, finds and damages records in a state store's log files
/// (<c>state/hlog.log.N</c>), as a disk would.</summary>
public static class StateLogBytes
{
    /// <summary>Stores edges <paramref name="from"/> … <paramref name="to"/> − 1, each carrying
    /// <paramref name="payload"/>, straight into the store.</summary>
    internal static void WriteEdges(StateStore store, int from, int to, IReadOnlyDictionary<string, string> payload)
    {
        using StateStore.Writer writer = store.BeginWrites();
        using var stream = new MemoryStream();
        using var encoder = new BinaryWriter(stream);
        for (int id = from; id < to; id++)
        {
            stream.SetLength(0);
            RecordCodec.Write(encoder, new EdgeRecord(id, 0, 0, 0, 1f, payload));
            encoder.Flush();
            writer.Put(RecordKind.Edge, stream.GetBuffer().AsSpan(0, (int)stream.Length));
        }
    }

    /// <summary>
    /// Where the latest record of <paramref name="kind"/> and <paramref name="id"/> starts in a
    /// store's log file, and where its value does. FASTER lays a record out as its 8-byte header,
    /// the key (length, then kind and id) padded to 16 bytes, then the value's length and bytes.
    /// </summary>
    internal static (long Record, long Value) Find(string file, RecordKind kind, int id)
    {
        byte[] key = new byte[4 + StateRecord.KeyBytes];
        BinaryPrimitives.WriteInt32LittleEndian(key, StateRecord.KeyBytes);
        StateRecord.WriteKey(key.AsSpan(4), kind, id);
        byte[] bytes = File.ReadAllBytes(file);
        int at = bytes.AsSpan().LastIndexOf(key);
        Assert.True(at >= 8, $"{kind} record {id} is not in {file}");
        return (at - 8, at + 20);
    }

    public static void Xor(string file, long offset, byte mask) => Xor(file, offset, [mask]);

    /// <summary>Flips the bits of <paramref name="mask"/> in the bytes from <paramref name="offset"/> on.</summary>
    public static void Xor(string file, long offset, ReadOnlySpan<byte> mask)
    {
        // Shared: the file of a store still open, too.
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        byte[] bytes = new byte[mask.Length];
        stream.Position = offset;
        stream.ReadExactly(bytes);
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= mask[i];
        }

        stream.Position = offset;
        stream.Write(bytes);
    }

    /// <summary>The 8 bytes at <paramref name="offset"/>, little-endian.</summary>
    public static long ReadInt64(string file, long offset)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        byte[] bytes = new byte[sizeof(long)];
        stream.Position = offset;
        stream.ReadExactly(bytes);
        return BinaryPrimitives.ReadInt64LittleEndian(bytes);
    }
}
