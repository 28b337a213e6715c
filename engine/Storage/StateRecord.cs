using System.Buffers.Binary;

namespace AssocDB.Engine.Storage;

/// <summary>
/// A state-store record as FASTER holds it: the key (kind and id) and the value, which carries a
/// CRC-32C over the key and the record's encoding, so that damage in the store's files is refused
/// instead of served (FASTER keeps no checksums).
/// </summary>
/// <remarks>
/// <para>
/// The key is the kind's byte and the id (little-endian int32). A value is, in format 1 (written
/// before checksums), the record's <see cref="RecordCodec"/> encoding, which starts with the id; in
/// format 2 (since), that encoding with its id, which the key holds anyway, replaced by eight bytes:
/// the id's bitwise complement, then a CRC-32C of the key and the rest of the encoding. A value
/// grows by four bytes only, which an edge's record takes without growing: FASTER rounds each
/// record to eight bytes, and an edge's left four spare (its record stays 56 bytes).
/// </para>
/// <para>
/// A value's first four bytes tell its format, compared with the key's id: the id is format 1, its
/// complement format 2, anything else is damage. Ids are never negative, so no format-1 value starts
/// with a complement (its top bit is set), and the two first words differ in every one of their 32
/// bits: damage passes a format-2 value off as an unchecked format-1 one only by rewriting all four
/// bytes to exactly the id; anything less leaves a first word of neither kind, which is refused. A
/// format byte would not do: format-1 values start with any byte, so a flipped format byte would
/// turn a checked record into an unchecked one. Nor would a key space of their own for checked
/// records: a record rewritten there would leave its older copy live under the old key. The one
/// change that still passes (the first word rewritten whole to the id, as a zeroed value of record 0
/// is) is refused too in every store created since, which never held a format-1 record and refuses
/// all (<see cref="StateLayout.RecordsChecksummed"/>).
/// </para>
/// <para>
/// A record whose key was damaged (moved to another id or kind) fails its checksum, but may never be
/// visited: FASTER's scan of live records takes a record whose key no longer leads the hash index's
/// chain for an older version and passes over it, and the key it came from falls back to its own
/// older version or vanishes. So the store checks every record of its log, live or not, at open, and
/// every record a compaction reads. FASTER's own record header and the lengths are not covered
/// here but checked by <see cref="LogFraming"/> before FASTER reads them, except the tombstone and
/// valid flags; nor are deletes (a tombstone has no value to carry a checksum), or the hash index.
/// </para>
/// <para>
/// A later format must start with a first word that no earlier one can start with, for any id.
/// </para>
/// </remarks>
internal static class StateRecord
{
    public const int KeyBytes = 1 + sizeof(int);

    /// <summary>The bytes a stored value holds beyond the record's encoding.</summary>
    public const int AddedBytes = HeaderBytes - sizeof(int);

    private const int HeaderBytes = 2 * sizeof(int);

    public static void WriteKey(Span<byte> key, RecordKind kind, int id)
    {
        key[0] = (byte)kind;
        BinaryPrimitives.WriteInt32LittleEndian(key[1..], id);
    }

    /// <summary>Writes the stored value of format 2 for the record <paramref name="encoding"/>
    /// encodes (its id first) into <paramref name="value"/>, <see cref="AddedBytes"/> longer. The
    /// encoding may lie in the value, <see cref="AddedBytes"/> on, and is then sealed in place.</summary>
    public static void Seal(RecordKind kind, ReadOnlySpan<byte> encoding, Span<byte> value)
    {
        int id = BinaryPrimitives.ReadInt32LittleEndian(encoding);
        encoding[sizeof(int)..].CopyTo(value[HeaderBytes..]);
        Span<byte> key = stackalloc byte[KeyBytes];
        WriteKey(key, kind, id);
        uint checksum = Crc32C.Of(key, value[HeaderBytes..(AddedBytes + encoding.Length)]);
        BinaryPrimitives.WriteInt32LittleEndian(value, ~id);
        BinaryPrimitives.WriteUInt32LittleEndian(value[sizeof(int)..], checksum);
    }

    /// <summary>Why the value stored under <paramref name="key"/> cannot be trusted, or null when it
    /// can: a format-2 value whose checksum holds, or a format-1 one (unchecked) in a store that
    /// may hold them (not <paramref name="checksummedOnly"/>).</summary>
    public static string? Damage(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool checksummedOnly)
    {
        if (key.Length != KeyBytes)
        {
            return $"its key is {key.Length} bytes long; every key is {KeyBytes}";
        }

        if (value.Length < sizeof(int))
        {
            return $"its value is {value.Length} bytes long, too short for any record";
        }

        int id = Id(key);
        int first = BinaryPrimitives.ReadInt32LittleEndian(value);
        if (first == id)
        {
            return checksummedOnly
                ? "it has no checksum (the format written before checksums), but this store was created with checksums and never held a record without one"
                : null;
        }

        if (first != ~id)
        {
            // A negative first word is a complement: a checksummed value written for another id.
            return first < 0
                ? $"its value names id {~first}, not {id}"
                : $"its value starts with {first}, neither its id (as a record without checksum does) nor the id's complement (as one with a checksum does)";
        }

        if (value.Length < HeaderBytes)
        {
            return $"its value is {value.Length} bytes long, too short for its checksum";
        }

        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(value[sizeof(int)..]);
        uint computed = Crc32C.Of(key, value[HeaderBytes..]);
        return stored == computed ? null : $"its checksum is {computed:x8}, it was written as {stored:x8}";
    }

    /// <summary>The record's encoding (its id first) from a value <see cref="Damage"/> passed,
    /// rebuilt in <paramref name="buffer"/> (grown as needed) where the value is of format 2.</summary>
    public static ReadOnlySpan<byte> Encoding(int id, ReadOnlySpan<byte> value, ref byte[] buffer)
    {
        if (BinaryPrimitives.ReadInt32LittleEndian(value) == id)
        {
            return value;
        }

        int length = value.Length - AddedBytes;
        if (buffer.Length < length)
        {
            buffer = new byte[Math.Max(length, 2 * buffer.Length)];
        }

        BinaryPrimitives.WriteInt32LittleEndian(buffer, id);
        value[HeaderBytes..].CopyTo(buffer.AsSpan(sizeof(int)));
        return buffer.AsSpan(0, length);
    }

    public static RecordKind Kind(ReadOnlySpan<byte> key) => (RecordKind)key[0];

    public static int Id(ReadOnlySpan<byte> key) => BinaryPrimitives.ReadInt32LittleEndian(key[1..]);

    /// <summary>The record a key names, for errors: its kind and id, where the key is whole.</summary>
    public static string Describe(ReadOnlySpan<byte> key) =>
        key.Length == KeyBytes ? $"{Kind(key)} record {Id(key)}" : $"record with a {key.Length}-byte key";
}
