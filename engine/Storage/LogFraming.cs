using System.Buffers.Binary;
using System.Numerics;
using Microsoft.Win32.SafeHandles;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Checks the state store's log files as FASTER will frame them, before FASTER reads them. FASTER
/// (2.6.5) trusts every record header and length it reads from disk: recovery walks each page it
/// loads record by record (<c>FasterKV.ClearLocksOnPage</c>, <c>RecoverFromPage</c>), sizing each
/// from its key's and value's lengths (<c>VariableLengthBlittableAllocator.GetRecordSize</c>), and
/// hashes each key over the length it claims. A damaged key length sends those reads up to a
/// gigabyte past the page, which ended the process with an AccessViolationException (no handler
/// can catch one), so one damaged collection took the server down instead of being reported
/// unavailable. A value length past the page made FASTER's scan skip the rest of the page, and the
/// records there vanished without a word; a damaged link to a key's previous version sends
/// FASTER's chain walks (every update's, and compaction's) to wherever it points.
/// </summary>
/// <remarks>
/// <para>
/// The layout checked, all of it fixed by this store: a record is FASTER's 8-byte header, its key
/// (a 4-byte length, always <see cref="StateRecord.KeyBytes"/>, and the key, padded to 16 bytes),
/// and its value (a 4-byte length and the bytes), padded to 8 bytes; it lies wholly in one page. An
/// all-zero header is no record: FASTER steps over it 8 bytes at a time, as it does over the zeroed
/// end of a page too short for the next record, and over what an update in place that shrank a
/// value cleared. A header's link to the key's previous version (its low 48 bits) points back, to
/// the start of a record, or below the log's begin address, where FASTER's walks stop; its
/// read-cache bit and the bits FASTER 2.6.5 never sets are clear. A FASTER upgrade must revisit
/// this layout (Directory.Packages.props pins the version).
/// </para>
/// <para>
/// Not covered: the tombstone and valid flags (an in-place delete keeps the value, so a tombstone
/// looks like any record), and the hash index's checkpoint. The checks read what recovery and the
/// store's scans read: every page from the one holding the lower of the checkpoint's begin and
/// head addresses to its final address, the last page as far as FASTER reads it (to the end of
/// the sector holding the final address; the rest is zero). Records past the final address were
/// written after the checkpoint; recovery walks them (cut short where the read ends, the rest
/// zero) and then drops them, so only that the walk stays in the page is checked there. Costs a read of the log and a bit per 8 bytes of it.
/// </para>
/// </remarks>
internal static class LogFraming
{
    /// <summary>FASTER's record header (<c>RecordInfo</c>).</summary>
    private const int HeaderBytes = 8;

    /// <summary>A key as FASTER stores it: its length and bytes, padded to 8 bytes.</summary>
    private const int KeyFieldBytes = (sizeof(int) + StateRecord.KeyBytes + 7) & ~7;

    /// <summary>Where a record's value (its length first) starts.</summary>
    private const int ValueOffset = HeaderBytes + KeyFieldBytes;

    /// <summary>Every record's bytes before its value's bytes.</summary>
    private const int MinRecordBytes = ValueOffset + sizeof(int);

    /// <summary>A key's or value's length without SpanByte's two flag bits.</summary>
    private const int LengthMask = (1 << 30) - 1;

    /// <summary>The header's link to the previous version of the key, without the read-cache bit.</summary>
    private const long AddressMask = (1L << 47) - 1;

    private const long ReadCacheBit = 1L << 47;

    /// <summary>Bits of the header FASTER 2.6.5 never sets: Unused2, Filler, Unused1.</summary>
    private const long UnsetBits = (1L << 58) | (1L << 60) | (1L << 63);

    /// <summary>A damaged record: where it starts, what it is (its kind and id where its key is
    /// whole, else null), and what is wrong.</summary>
    public sealed record Damage(long Address, string? Record, string Problem);

    /// <summary>The first record of the log in <paramref name="directory"/> (files
    /// <c><paramref name="logFileName"/>.N</c>) that FASTER would misread when it recovers a
    /// checkpoint with these addresses, or null when there is none.</summary>
    public static Damage? Check(string directory, string logFileName, StateLayout layout, uint sectorBytes, long beginAddress, long headAddress, long finalAddress)
    {
        int pageBits = BitOperations.Log2((ulong)layout.PageBytes);
        int segmentBits = BitOperations.Log2((ulong)layout.SegmentBytes);
        int pageBytes = (int)layout.PageBytes;
        long firstAddress = (Math.Min(beginAddress, headAddress) >> pageBits) << pageBits;
        long readUntil = (finalAddress + sectorBytes - 1) / sectorBytes * sectorBytes;

        // Where records start below the final address, for the links: a bit per 8 bytes.
        var starts = new ulong[(((finalAddress - firstAddress) >> 3) + 63) >> 6];
        byte[] page = new byte[pageBytes];
        var files = new Dictionary<long, SafeFileHandle?>();
        try
        {
            for (long pageStart = firstAddress; pageStart < finalAddress; pageStart += pageBytes)
            {
                long segment = pageStart >> segmentBits;
                if (!files.TryGetValue(segment, out SafeFileHandle? file))
                {
                    string path = Path.Combine(directory, $"{logFileName}.{segment}");
                    file = File.Exists(path) ? File.OpenHandle(path) : null;
                    files[segment] = file;
                }

                ReadPage(file, pageStart & (layout.SegmentBytes - 1), page, (int)Math.Min(pageBytes, readUntil - pageStart));
                if (CheckPage(page, pageStart, beginAddress, finalAddress, firstAddress, starts) is { } damage)
                {
                    return damage;
                }
            }
        }
        finally
        {
            foreach (SafeFileHandle? file in files.Values)
            {
                file?.Dispose();
            }
        }

        return null;
    }

    /// <summary>Reads <paramref name="length"/> bytes of a page into <paramref name="page"/> and
    /// zeroes the rest, as FASTER does (and past a file's end, or without the file).</summary>
    private static void ReadPage(SafeFileHandle? file, long offset, byte[] page, int length)
    {
        int read = 0;
        while (file is not null && read < length)
        {
            int got = RandomAccess.Read(file, page.AsSpan(read, length - read), offset + read);
            if (got == 0)
            {
                break;
            }

            read += got;
        }

        page.AsSpan(read).Clear();
    }

    private static Damage? CheckPage(byte[] page, long pageStart, long beginAddress, long finalAddress, long firstAddress, ulong[] starts)
    {
        for (int at = 0; at < page.Length;)
        {
            long address = pageStart + at;
            long header = BinaryPrimitives.ReadInt64LittleEndian(page.AsSpan(at));
            if (header == 0)
            {
                at += HeaderBytes;
                continue;
            }

            if (page.Length - at < MinRecordBytes)
            {
                return new Damage(address, null, $"a record header lies {page.Length - at} bytes before its page's end, too few for any record");
            }

            int keyLength = BinaryPrimitives.ReadInt32LittleEndian(page.AsSpan(at + HeaderBytes));
            if (address >= finalAddress)
            {
                // Written after the checkpoint, and read only as far as the sector the final
                // address ends in, so a record there may be cut short: only what FASTER's walk
                // reads must lie in the page.
                if (WalkedSize(page, at, keyLength) is not { } walked)
                {
                    return new Damage(address, null, $"its key's length reads {keyLength}, which puts its value's length past its page's end");
                }

                at += walked;
                continue;
            }

            if (keyLength != StateRecord.KeyBytes)
            {
                return new Damage(address, null, $"its key's length reads {keyLength}; every key is {StateRecord.KeyBytes} bytes");
            }

            string record = StateRecord.Describe(page.AsSpan(at + HeaderBytes + sizeof(int), StateRecord.KeyBytes));
            int valueLength = BinaryPrimitives.ReadInt32LittleEndian(page.AsSpan(at + ValueOffset));
            int room = page.Length - at - MinRecordBytes;
            if (valueLength < 0 || valueLength > room)
            {
                return new Damage(address, record, $"its value's length reads {valueLength}, but its page has {room} bytes left");
            }

            long previous = header & AddressMask;
            string? link = (header & ReadCacheBit) != 0 ? "links it to FASTER's read cache, which this store has none of"
                : (header & UnsetBits) != 0 ? $"sets bits FASTER never sets ({header:x16})"
                : previous >= address ? $"links it to address {previous}, not before it"
                : previous >= beginAddress && !IsStart(starts, previous - firstAddress) ? $"links it to address {previous}, where no record starts"
                : null;
            if (link is not null)
            {
                return new Damage(address, record, $"its header {link}");
            }

            MarkStart(starts, address - firstAddress);
            at += (MinRecordBytes + valueLength + 7) & ~7;
        }

        return null;
    }

    /// <summary>The bytes FASTER's walk of a page steps over for the record at <paramref name="at"/>
    /// (<c>GetRecordSize</c>: its lengths without SpanByte's flag bits), or null when the value's
    /// length it reads lies past the page.</summary>
    private static int? WalkedSize(byte[] page, int at, int keyLength)
    {
        int valueAt = HeaderBytes + ((sizeof(int) + (keyLength & LengthMask) + 7) & ~7);
        if (valueAt > page.Length - at - sizeof(int))
        {
            return null;
        }

        int valueLength = BinaryPrimitives.ReadInt32LittleEndian(page.AsSpan(at + valueAt)) & LengthMask;
        return (valueAt + sizeof(int) + valueLength + 7) & ~7;
    }

    private static bool IsStart(ulong[] starts, long offset) => (starts[offset >> 9] & (1UL << (int)((offset >> 3) & 63))) != 0;

    private static void MarkStart(ulong[] starts, long offset) => starts[offset >> 9] |= 1UL << (int)((offset >> 3) & 63);
}
