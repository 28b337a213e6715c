using System.Buffers.Binary;
using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The state store's key hash since <see cref="StateLayout.OrderedKeys"/>: it keeps a kind's
/// consecutive ids together in FASTER's hash index, where FASTER's own hash of the key's bytes
/// scatters them.
/// </summary>
/// <remarks>
/// <para>
/// FASTER takes a hash's low bits for the bucket (64 bytes: seven entries and the address of an
/// overflow bucket) and its top 14 bits for the tag that tells the keys of one bucket's chain
/// apart. Writes come in id order (a bulk load adds facts, and concepts, with ids one after
/// another), so <see cref="IdsPerBucket"/> consecutive ids of a kind share a bucket, and the next
/// ones take the next bucket: the index is walked in address order, a cache line for seven
/// records, where a scattering hash paid a cache miss for each record and each bucket of its chain
/// (FASTER's upsert was 10 % of all samples of a 10 M-fact load with a 32 MiB index; 3.6 % with this
/// hash). Each kind starts at its own place in the table.
/// </para>
/// <para>
/// Keys sharing a tag in one chain are told apart by reading their records in FASTER's log, so the
/// tag holds what tells a chain's keys apart: the id's place among its seven, the kind, and the id's
/// group above the lowest 16 bits. Keys of a kind share a bucket only when their groups (id / 7)
/// are equal modulo the bucket count, which is at least 2^16 for an index of 4 MiB or more: such
/// keys differ in those higher bits, so their tags differ up to ids of about 134 million of a kind.
/// Beyond, or in a smaller index, tags may repeat, which costs reads, never correctness.
/// </para>
/// <para>
/// The hash must never change for a store once written: the index FASTER checkpoints and rebuilds
/// holds each key where this hash put it. It reads the key alone, not the index size.
/// </para>
/// </remarks>
internal sealed class StateKeyHash : IFasterEqualityComparer<SpanByte>
{
    public static readonly StateKeyHash Instance = new();

    /// <summary>A bucket's entries, less the overflow bucket's address.</summary>
    private const uint IdsPerBucket = 7;

    private const int TagBits = 14;
    private const int TagShift = 64 - TagBits;
    private const ulong TagMask = (1UL << TagBits) - 1;
    private const ulong BucketMask = (1UL << TagShift) - 1;

    /// <summary>The groups of ids below a bucket count of 2^16 share their top bits.</summary>
    private const int GroupTagShift = 16;

    /// <summary>Room in the tag for kinds: <see cref="RecordKind"/> values are below it.</summary>
    private const ulong KindsInTag = 8;

    /// <summary>Spreads the kinds' starting buckets over the table (the golden ratio's fraction of 2^64).</summary>
    private const ulong KindSpread = 0x9E3779B97F4A7C15UL;

    private StateKeyHash()
    {
    }

    public long GetHashCode64(ref SpanByte k)
    {
        ReadOnlySpan<byte> key = k.AsReadOnlySpan();
        return Hash(key[0], BinaryPrimitives.ReadUInt32LittleEndian(key[1..StateRecord.KeyBytes]));
    }

    public bool Equals(ref SpanByte k1, ref SpanByte k2) => k1.AsReadOnlySpan().SequenceEqual(k2.AsReadOnlySpan());

    /// <summary>The hash of the key of kind <paramref name="kind"/> and id <paramref name="id"/>.</summary>
    internal static long Hash(byte kind, uint id)
    {
        uint group = id / IdsPerBucket;
        uint place = id - (group * IdsPerBucket);
        ulong bucket = (group + (kind * KindSpread)) & BucketMask;
        ulong tag = ((((ulong)(group >> GroupTagShift) * IdsPerBucket) + place) * KindsInTag + kind) & TagMask;
        return (long)((tag << TagShift) | bucket);
    }
}
