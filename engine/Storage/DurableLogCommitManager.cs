using System.Buffers.Binary;
using System.Globalization;
using FASTER.core;
using Microsoft.Win32.SafeHandles;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Writes the write-ahead log's commit records, replacing FASTER's default manager, which ignores a
/// failed write of the record (its I/O callback only logs the error), lets the commit complete as
/// if durable, and then deletes the previous record: a full disk lost every acknowledged entry.
/// Here a failed write throws, and the record before stays readable.
/// </summary>
/// <remarks>
/// <para>Every write waits for its record, so the record is one write in place: the file
/// <c>log-commits/commit.slots</c> holds two slots of one 512-byte sector each, 4 KiB apart (see
/// <see cref="SlotStride"/>), and a record overwrites the slot that does not hold the newest one,
/// with a synchronous write. A crash leaves a sector whole, old or new (the same guarantee
/// PostgreSQL's control file relies on), so the slot being written holds the record before or the
/// new one, and the other slot the newest record before it: a slot that fails its checksum was
/// damaged afterwards, and stops the open (see <see cref="UnreadableCommit"/>) rather than be read
/// as the older record, which would lose the commits after it. A slot is its marker, the commit
/// number, the record's length, FASTER's record and a CRC-32C of all four, then zeros; a slot never
/// written is all zeros. Each record used to be a file of its own (<c>commit.N.0</c>, written and
/// renamed into place), which cost a new file, two flushes and a delete per write, a tenth of a
/// bulk load's time; logs committed that way, or by FASTER's default manager before, read the same,
/// and their files are deleted once a newer record is in a slot.</para>
/// <para>FASTER calls <see cref="Commit"/> on its commit worker and swallows what it throws, leaving
/// the commit waiters waiting; <see cref="Failed"/> is how they learn of the failure instead.</para>
/// </remarks>
internal sealed class DurableLogCommitManager : ILogCommitManager
{
    /// <summary>The file of the two slots.</summary>
    public const string SlotsFileName = "commit.slots";

    /// <summary>The file the slots' file is first written to before it is renamed into place; also
    /// the file earlier versions wrote each record to.</summary>
    public const string PendingFileName = "commit.pending";

    /// <summary>A slot's size: a sector, which a device writes whole through a crash.</summary>
    public const int SlotBytes = 512;

    /// <summary>Where the second slot starts: each slot lies in a 4 KiB block of its own, since a
    /// device with 4 KiB physical sectors rewrites the whole block for a 512-byte write (and the
    /// page cache writes back whole 4 KiB pages), so that only the slot being written can be torn.</summary>
    public const int SlotStride = 4096;

    private const string LegacyFilePrefix = "commit.";
    private const string LegacyFileSuffix = ".0";

    /// <summary>"ADBC", little-endian: what starts a slot that was written.</summary>
    private const uint SlotMarker = 0x43424441;

    private const int CommitNumOffset = sizeof(uint);
    private const int LengthOffset = CommitNumOffset + sizeof(long);
    private const int SlotHeaderBytes = LengthOffset + sizeof(int);
    private const int SlotRecordCapacity = SlotBytes - SlotHeaderBytes - sizeof(uint);

    /// <summary>The sector FASTER's default manager padded its records to: its local devices on
    /// Linux assume 512 bytes (<c>ManagedLocalStorageDevice</c>).</summary>
    private const int LegacySectorBytes = 512;

    private readonly string _directory;
    private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The records in the two slots, as last read or written.</summary>
    private readonly SlotRecord?[] _slots = new SlotRecord?[2];

    /// <summary>The commit numbers of the record files of earlier versions still on disk.</summary>
    private readonly List<long> _legacyCommits;

    /// <summary>The slots' file, opened for synchronous writes; null until it exists.</summary>
    private SafeFileHandle? _slotsFile;

    /// <param name="logDirectory">The log's folder; the records go in its <c>log-commits</c> folder.</param>
    public DurableLogCommitManager(string logDirectory)
    {
        _directory = Path.Combine(logDirectory, "log-commits");
        Directory.CreateDirectory(_directory);
        FolderInPlaceOfFile.RefuseAny(
            _directory,
            name => name is SlotsFileName or PendingFileName || IsLegacyFileName(name),
            "the write-ahead log's commit records");

        // Left by a write that failed or was interrupted; no record refers to it.
        File.Delete(Path.Combine(_directory, PendingFileName));
        _legacyCommits = [.. ListLegacyCommits()];
        if (File.Exists(SlotsPath))
        {
            _slotsFile = OpenSlotsFile();
            ReadSlots();
        }
    }

    /// <summary>Faults with the error of the first commit record that could not be written.</summary>
    public Task Failed => _failed.Task;

    /// <summary>Why a commit record was passed over at recovery although it may hold the latest
    /// commit (it could not be read, or is damaged), or null.</summary>
    public Exception? UnreadableCommit { get; private set; }

    private string SlotsPath => Path.Combine(_directory, SlotsFileName);

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        // After a failed record nothing more is committed: a later record would make the refused
        // write durable.
        if (_failed.Task.IsFaulted)
        {
            throw _failed.Task.Exception!.InnerException!;
        }

        try
        {
            WriteSlot(new SlotRecord(commitNum, commitMetadata));
        }
        catch (Exception exception)
        {
            // Whatever the cause, the waiters must hear of it (FASTER would leave them waiting).
            var failure = new IOException(
                $"the write-ahead log's commit record {commitNum} (up to address {untilAddress}) could not be written to {SlotsPath}: {exception.Message}",
                exception);
            _failed.TrySetException(failure);
            throw failure;
        }

        // A record file of the same number is one recovery passed over (unreadable); this record
        // replaces it.
        RemoveLegacyCommitsBefore(commitNum + 1);
    }

    /// <summary>Overwrites the slot that does not hold the newest record, so that the newest stays
    /// whole whatever becomes of this write.</summary>
    private void WriteSlot(SlotRecord record)
    {
        if (record.Metadata.Length > SlotRecordCapacity)
        {
            // FASTER's record grows only with iterators and a cookie, which the log persists neither of.
            throw new InvalidOperationException($"the record is {record.Metadata.Length} bytes, and a slot holds {SlotRecordCapacity}");
        }

        _slotsFile ??= CreateSlotsFile();
        int slot = Newest() is int newest ? 1 - newest : 0;
        try
        {
            RandomAccess.Write(_slotsFile, Sector(record), (long)slot * SlotStride);
        }
        catch
        {
            // A failed write may have changed part of the sector; what it held is put back where
            // the disk still takes it, so that the reopen does not find the slot damaged.
            try
            {
                RandomAccess.Write(_slotsFile, Sector(_slots[slot]), (long)slot * SlotStride);
            }
            catch (IOException)
            {
            }

            throw;
        }

        _slots[slot] = record;
    }

    /// <summary>A slot's bytes: all zeros for none.</summary>
    private static byte[] Sector(SlotRecord? record)
    {
        byte[] sector = new byte[SlotBytes];
        if (record is not null)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(sector, SlotMarker);
            BinaryPrimitives.WriteInt64LittleEndian(sector.AsSpan(CommitNumOffset), record.CommitNum);
            BinaryPrimitives.WriteInt32LittleEndian(sector.AsSpan(LengthOffset), record.Metadata.Length);
            record.Metadata.CopyTo(sector, SlotHeaderBytes);
            int checksummed = SlotHeaderBytes + record.Metadata.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(sector.AsSpan(checksummed), Crc32C.Of(sector.AsSpan(0, checksummed)));
        }

        return sector;
    }

    /// <summary>The index of the slot holding the record of <paramref name="commitNum"/>, or null.</summary>
    private int? SlotOf(long commitNum) =>
        Array.FindIndex(_slots, record => record?.CommitNum == commitNum) is var slot and >= 0 ? slot : null;

    /// <summary>The index of the slot holding the newest record, or null when neither holds one.</summary>
    private int? Newest() =>
        (_slots[0], _slots[1]) switch
        {
            (null, null) => null,
            (null, _) => 1,
            (_, null) => 0,
            var (first, second) => first.CommitNum >= second.CommitNum ? 0 : 1,
        };

    /// <summary>Creates the slots' file, both slots empty, durably: written aside, flushed, renamed
    /// into place, and the folder flushed.</summary>
    private SafeFileHandle CreateSlotsFile()
    {
        string pending = Path.Combine(_directory, PendingFileName);
        using (var stream = new FileStream(pending, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            stream.Write(new byte[2 * SlotStride]);
            stream.Flush(flushToDisk: true);
        }

        File.Move(pending, SlotsPath);
        DirectoryDurability.Flush(_directory);
        return OpenSlotsFile();
    }

    /// <summary>Opens the slots' file for synchronous writes (a write returns once it is on disk);
    /// others may read it.</summary>
    private SafeFileHandle OpenSlotsFile() => File.OpenHandle(SlotsPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, FileOptions.WriteThrough);

    /// <summary>Reads both slots; a damaged one is reported (see <see cref="UnreadableCommit"/>).</summary>
    private void ReadSlots()
    {
        byte[] file = new byte[2 * SlotStride];
        int read;
        try
        {
            read = RandomAccess.Read(_slotsFile!, file, 0);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            UnreadableCommit ??= exception;
            return;
        }

        for (int slot = 0; slot < _slots.Length; slot++)
        {
            Span<byte> sector = file.AsSpan(slot * SlotStride, SlotBytes);
            string? damage = read < (slot * SlotStride) + SlotBytes
                ? $"the file is {read} bytes long, and {SlotsFileName} is written whole, {2 * SlotStride} bytes"
                : ReadSlot(sector, out _slots[slot]);
            if (damage is not null)
            {
                UnreadableCommit ??= new InvalidDataException(
                    $"the commit record in slot {slot} of {SlotsPath} is damaged: {damage}. AssocDB writes each record in place within one sector, which a crash leaves whole, so it was damaged afterwards; recovering the other slot's older record instead would lose the commits it holds");
            }
        }
    }

    /// <summary>The record a slot holds (null when it is empty), or what is wrong with it.</summary>
    private static string? ReadSlot(ReadOnlySpan<byte> sector, out SlotRecord? record)
    {
        record = null;
        if (!sector.ContainsAnyExcept((byte)0))
        {
            return null;
        }

        int length = BinaryPrimitives.ReadInt32LittleEndian(sector[LengthOffset..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(sector) != SlotMarker || length < 0 || length > SlotRecordCapacity)
        {
            return "its header is not one AssocDB writes";
        }

        int checksummed = SlotHeaderBytes + length;
        if (Crc32C.Of(sector[..checksummed]) != BinaryPrimitives.ReadUInt32LittleEndian(sector[checksummed..]))
        {
            return "its checksum does not match";
        }

        byte[] metadata = sector.Slice(SlotHeaderBytes, length).ToArray();
        if (RecoveryInfoDamage(metadata) is { } damage)
        {
            return damage;
        }

        record = new SlotRecord(BinaryPrimitives.ReadInt64LittleEndian(sector[CommitNumOffset..]), metadata);
        return null;
    }

    /// <summary>Deletes the record files of earlier versions once a newer record is durable.
    /// Deleting is not needed for correctness (recovery takes the newest readable record), so a
    /// failure only leaves a file.</summary>
    private void RemoveLegacyCommitsBefore(long commitNum) =>
        _legacyCommits.RemoveAll(older => older < commitNum && Deleted(LegacyPathOf(older)));

    private static bool Deleted(string file)
    {
        try
        {
            File.Delete(file);
            return true;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// The record, or null when it cannot be read or is damaged. A slot's record was read whole when
    /// the manager opened. A record file of earlier versions that is damaged is judged as before:
    /// one of FASTER's default manager's shape (a multiple of its sector, see
    /// <see cref="MayBeTornLegacyRecord"/>) beside an older one was torn by a crash while that manager
    /// wrote it, and recovery passes over it for the older one; AssocDB renamed its own records into
    /// place whole, so a damaged one of those is damage to the disk, and so is a damaged record alone:
    /// either is reported (see <see cref="UnreadableCommit"/>) rather than read as an older log or an
    /// empty one, which would lose the commits after.
    /// </summary>
    public byte[]? GetCommitMetadata(long commitNum)
    {
        if (SlotOf(commitNum) is int slot)
        {
            return _slots[slot]!.Metadata;
        }

        byte[] file;
        try
        {
            file = File.ReadAllBytes(LegacyPathOf(commitNum));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // FASTER passes over a record it cannot read and recovers an older one; the log
            // checks this after opening rather than silently losing the commits in between.
            UnreadableCommit ??= exception;
            throw;
        }

        if (LegacyDamage(file) is { } damage)
        {
            if (!MayBeTornLegacyRecord(file))
            {
                UnreadableCommit ??= new InvalidDataException(
                    $"the commit record {LegacyPathOf(commitNum)} is damaged: {damage}. AssocDB writes its records whole, and this one is not of the padded shape of FASTER's own ({file.Length} bytes, not a multiple of {LegacySectorBytes}), so it was damaged afterwards; recovering an older record instead would lose the commits it holds");
            }
            else if (!ListCommits().Any(older => older < commitNum))
            {
                UnreadableCommit ??= new InvalidDataException($"the commit record {LegacyPathOf(commitNum)} is damaged: {damage}");
            }

            return null;
        }

        return file.AsSpan(sizeof(int), BinaryPrimitives.ReadInt32LittleEndian(file)).ToArray();
    }

    /// <summary>
    /// Whether a record file may be one FASTER's default manager was writing when a crash tore it.
    /// That manager writes the length and record in one write padded with zeros to the device's
    /// sector (<c>DeviceLogCommitCheckpointManager.WriteInto</c>), so its files are whole sectors,
    /// and a torn one is too, or empty. AssocDB wrote the length and record alone: a 48-byte file
    /// for FASTER's record without iterators or cookie, which the log uses neither of.
    /// </summary>
    private static bool MayBeTornLegacyRecord(byte[] file) => file.Length % LegacySectorBytes == 0;

    /// <summary>What is wrong with a record file of earlier versions, or null: its length field must
    /// fit the file, and the record must parse with a matching checksum.</summary>
    private static string? LegacyDamage(byte[] file)
    {
        int length = file.Length < sizeof(int) ? -1 : BinaryPrimitives.ReadInt32LittleEndian(file);
        return length < 0 || length > file.Length - sizeof(int)
            ? $"it is {file.Length} bytes long, too short for the record it announces"
            : RecoveryInfoDamage(file.AsSpan(sizeof(int), length).ToArray());
    }

    /// <summary>What is wrong with FASTER's record, or null: it must parse with a matching checksum.</summary>
    private static string? RecoveryInfoDamage(byte[] metadata)
    {
        try
        {
            // FASTER checks the checksum as it recovers too, but uses the addresses it read even
            // when it fails.
            using var reader = new BinaryReader(new MemoryStream(metadata));
            new FasterLogRecoveryInfo().Initialize(reader);
            return null;
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            // Whatever the parse throws (a damaged count makes it read a negative length, say):
            // FASTER swallows it too, and would open the log empty.
            return exception.Message;
        }
    }

    /// <summary>The records on disk, newest first.</summary>
    public IEnumerable<long> ListCommits() =>
        _slots.OfType<SlotRecord>().Select(record => record.CommitNum).Concat(_legacyCommits).OrderDescending().ToList();

    private IEnumerable<long> ListLegacyCommits() =>
        Directory.EnumerateFiles(_directory, LegacyFilePrefix + "*" + LegacyFileSuffix)
            .Select(Path.GetFileName)
            .Where(name => IsLegacyFileName(name!))
            .Select(name => long.Parse(name![LegacyFilePrefix.Length..^LegacyFileSuffix.Length], NumberStyles.None, CultureInfo.InvariantCulture));

    private static bool IsLegacyFileName(string name) =>
        name.EndsWith(LegacyFileSuffix, StringComparison.Ordinal) && FolderInPlaceOfFile.IsNumbered(name[..^LegacyFileSuffix.Length], LegacyFilePrefix);

    public void RemoveCommit(long commitNum)
    {
        if (SlotOf(commitNum) is int slot)
        {
            RandomAccess.Write(_slotsFile!, Sector(null), (long)slot * SlotStride);
            _slots[slot] = null;
        }
        else
        {
            File.Delete(LegacyPathOf(commitNum));
            _legacyCommits.Remove(commitNum);
        }
    }

    public void RemoveAllCommits()
    {
        foreach (long commitNum in ListCommits())
        {
            RemoveCommit(commitNum);
        }
    }

    /// <summary>Drops the record files older than the record recovered. Newer ones are unreadable
    /// (else they would have been recovered) and are kept: an I/O error may yet clear. The slots
    /// are overwritten by the next records.</summary>
    public void OnRecovery(long commitNum) => RemoveLegacyCommitsBefore(commitNum);

    public void Dispose() => _slotsFile?.Dispose();

    private string LegacyPathOf(long commitNum) =>
        Path.Combine(_directory, LegacyFilePrefix + commitNum.ToString(CultureInfo.InvariantCulture) + LegacyFileSuffix);

    /// <summary>A commit record: its number and FASTER's record.</summary>
    private sealed record SlotRecord(long CommitNum, byte[] Metadata);
}
