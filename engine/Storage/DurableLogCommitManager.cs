using System.Buffers.Binary;
using System.Globalization;
using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Writes the write-ahead log's commit records, replacing FASTER's default manager, which ignores a
/// failed write of the record (its I/O callback only logs the error), lets the commit complete as
/// if durable, and then deletes the previous record: a full disk lost every acknowledged entry.
/// Here a record is written to a temporary file, flushed to disk, renamed into place and the
/// folder flushed; any failure throws, and the previous record is deleted only after the new one
/// is durable. The files keep the default manager's name and format
/// (<c>log-commits/commit.N.0</c>: the record's length as a little-endian int32, then the record),
/// so a log written before reads the same.
/// </summary>
/// <remarks>
/// FASTER calls <see cref="Commit"/> on its commit worker and swallows what it throws, leaving the
/// commit waiters waiting; <see cref="Failed"/> is how they learn of the failure instead.
/// </remarks>
internal sealed class DurableLogCommitManager : ILogCommitManager
{
    private const string FilePrefix = "commit.";
    private const string FileSuffix = ".0";

    /// <summary>The file a record is written to before it is renamed into place; one at a time,
    /// since FASTER writes commit records from a single worker.</summary>
    public const string PendingFileName = "commit.pending";

    /// <summary>The sector FASTER's default manager padded its records to: its local devices on
    /// Linux assume 512 bytes (<c>ManagedLocalStorageDevice</c>).</summary>
    private const int LegacySectorBytes = 512;

    private readonly string _directory;
    private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="logDirectory">The log's folder; the records go in its <c>log-commits</c> folder.</param>
    public DurableLogCommitManager(string logDirectory)
    {
        _directory = Path.Combine(logDirectory, "log-commits");
        Directory.CreateDirectory(_directory);
        FolderInPlaceOfFile.RefuseAny(
            _directory,
            name => name == PendingFileName || (name.EndsWith(FileSuffix, StringComparison.Ordinal) && FolderInPlaceOfFile.IsNumbered(name[..^FileSuffix.Length], FilePrefix)),
            "the write-ahead log's commit records");

        // Left by a write that failed or was interrupted; no record refers to it.
        File.Delete(Path.Combine(_directory, PendingFileName));
    }

    /// <summary>Faults with the error of the first commit record that could not be written.</summary>
    public Task Failed => _failed.Task;

    /// <summary>Why a commit record was passed over at recovery although it may hold the latest
    /// commit (it could not be read, or is damaged), or null.</summary>
    public Exception? UnreadableCommit { get; private set; }

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
            WriteDurably(commitNum, commitMetadata);
        }
        catch (Exception exception)
        {
            // Whatever the cause, the waiters must hear of it (FASTER would leave them waiting).
            var failure = new IOException(
                $"the write-ahead log's commit record {commitNum} (up to address {untilAddress}) could not be written to {_directory}: {exception.Message}",
                exception);
            _failed.TrySetException(failure);
            throw failure;
        }

        RemoveCommitsBefore(commitNum);
    }

    private void WriteDurably(long commitNum, byte[] commitMetadata)
    {
        string pending = Path.Combine(_directory, PendingFileName);
        byte[] record = new byte[sizeof(int) + commitMetadata.Length];
        BinaryPrimitives.WriteInt32LittleEndian(record, commitMetadata.Length);
        commitMetadata.CopyTo(record, sizeof(int));
        using (var stream = new FileStream(pending, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            stream.Write(record);
            stream.Flush(flushToDisk: true);
        }

        File.Move(pending, PathOf(commitNum), overwrite: true);
        try
        {
            DirectoryDurability.Flush(_directory);
        }
        catch
        {
            // The record is in place but not known durable; the write will be reported as failed,
            // so the record must go, or a restart could replay a write the client was told failed.
            File.Delete(PathOf(commitNum));
            DirectoryDurability.Flush(_directory);
            throw;
        }
    }

    /// <summary>Deletes older records once a newer one is durable. Deleting is not needed for
    /// correctness (recovery takes the newest readable record), so a failure only leaves a file.</summary>
    private void RemoveCommitsBefore(long commitNum)
    {
        foreach (long older in ListCommits().Where(number => number < commitNum))
        {
            try
            {
                File.Delete(PathOf(older));
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    /// <summary>
    /// The record, or null when it cannot be read or is damaged. A damaged record of FASTER's
    /// default manager's shape (a multiple of its sector, see <see cref="MayBeTornLegacyRecord"/>)
    /// beside an older one was torn by a crash while that manager wrote it (logs from before this
    /// manager), and recovery passes over it for the older one. This manager renames records into
    /// place whole, so a damaged record of its own is damage to the disk, and so is a damaged record
    /// alone: either is reported (see <see cref="UnreadableCommit"/>) rather than read as an older
    /// log or an empty one, which would lose the commits after.
    /// </summary>
    public byte[]? GetCommitMetadata(long commitNum)
    {
        byte[] file;
        try
        {
            file = File.ReadAllBytes(PathOf(commitNum));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // FASTER passes over a record it cannot read and recovers an older one; the log
            // checks this after opening rather than silently losing the commits in between.
            UnreadableCommit ??= exception;
            throw;
        }

        if (Damage(file) is { } damage)
        {
            if (!MayBeTornLegacyRecord(file))
            {
                UnreadableCommit ??= new InvalidDataException(
                    $"the commit record {PathOf(commitNum)} is damaged: {damage}. AssocDB writes its records whole, and this one is not of the padded shape of FASTER's own ({file.Length} bytes, not a multiple of {LegacySectorBytes}), so it was damaged afterwards; recovering an older record instead would lose the commits it holds");
            }
            else if (!ListCommits().Any(older => older < commitNum))
            {
                UnreadableCommit ??= new InvalidDataException($"the commit record {PathOf(commitNum)} is damaged: {damage}");
            }

            return null;
        }

        return file.AsSpan(sizeof(int), BinaryPrimitives.ReadInt32LittleEndian(file)).ToArray();
    }

    /// <summary>
    /// Whether a record file may be one FASTER's default manager was writing when a crash tore it.
    /// That manager writes the length and record in one write padded with zeros to the device's
    /// sector (<c>DeviceLogCommitCheckpointManager.WriteInto</c>), so its files are whole sectors,
    /// and a torn one is too, or empty. This manager writes the length and record alone: a 48-byte
    /// file for FASTER's record without iterators or cookie, which the log uses neither of.
    /// </summary>
    private static bool MayBeTornLegacyRecord(byte[] file) => file.Length % LegacySectorBytes == 0;

    /// <summary>What is wrong with a record file, or null: its length field must fit the file, and
    /// the record must parse with a matching checksum.</summary>
    private static string? Damage(byte[] file)
    {
        int length = file.Length < sizeof(int) ? -1 : BinaryPrimitives.ReadInt32LittleEndian(file);
        if (length < 0 || length > file.Length - sizeof(int))
        {
            return $"it is {file.Length} bytes long, too short for the record it announces";
        }

        try
        {
            // FASTER checks the checksum as it recovers too, but uses the addresses it read even
            // when it fails.
            using var reader = new BinaryReader(new MemoryStream(file, sizeof(int), length));
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
        Directory.EnumerateFiles(_directory, FilePrefix + "*" + FileSuffix)
            .Select(path => Path.GetFileName(path)[FilePrefix.Length..^FileSuffix.Length])
            .Select(number => long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long commitNum) ? commitNum : -1)
            .Where(commitNum => commitNum >= 0)
            .OrderDescending()
            .ToList();

    public void RemoveCommit(long commitNum) => File.Delete(PathOf(commitNum));

    public void RemoveAllCommits()
    {
        foreach (long commitNum in ListCommits())
        {
            RemoveCommit(commitNum);
        }
    }

    /// <summary>Drops the records older than the one recovered. Newer ones are unreadable (else
    /// they would have been recovered) and are kept: the commits that reuse their numbers replace
    /// them, and an I/O error may yet clear.</summary>
    public void OnRecovery(long commitNum) => RemoveCommitsBefore(commitNum);

    public void Dispose()
    {
    }

    private string PathOf(long commitNum) =>
        Path.Combine(_directory, FilePrefix + commitNum.ToString(CultureInfo.InvariantCulture) + FileSuffix);
}
