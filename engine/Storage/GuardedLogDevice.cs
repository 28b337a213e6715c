using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The state store's log device, which deletes log files only when the store says so. FASTER
/// deletes the files below a checkpoint's begin address as soon as it has issued that checkpoint's
/// metadata write (<c>FasterKV.WriteHybridLogMetaInfo</c>), before anyone knows whether the
/// checkpoint reached disk; after a compaction those are the files the previous checkpoint reads,
/// so a checkpoint that then failed left none to recover from. Here FASTER's truncations do
/// nothing, and <see cref="DeleteUntil"/> deletes once a checkpoint has been read back whole.
/// Page writes go to the files in pieces (see <see cref="WritePieceBytes"/>). Everything else goes
/// to the wrapped device unchanged, segment removal included: FASTER calls it only to trim files
/// past the tail at recovery, which this store does not ask for.
/// </summary>
/// <remarks>
/// It also reports each failed write to <paramref name="writeFailed"/>, naming the file and
/// offset: FASTER never counts a page whose write failed as written, so whatever needs it written
/// (room in memory for more records, a compaction's flush, a checkpoint) waits for it forever, and
/// only the device sees why.
/// </remarks>
internal sealed class GuardedLogDevice(OpenCheckedDevice files, Action<string> writeFailed) : ForwardingDevice(files)
{
    private readonly OpenCheckedDevice _files = files;

    /// <summary>Sends no more reads or writes to the files (see <see cref="OpenCheckedDevice.Retire"/>).
    /// A write already passed on is not stopped: one on a file it had open reaches that file.</summary>
    public void Retire() => _files.Retire();

    /// <summary>Deletes the log files wholly below <paramref name="address"/>: call only once a
    /// checkpoint whose begin address is at or past it has been read back whole.</summary>
    public void DeleteUntil(long address) => Files.TruncateUntilAddress(address);

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context) =>
        Files.WriteAsync(sourceAddress, segmentId, destinationAddress, numBytesToWrite, Reporting(callback, segmentId, (long)destinationAddress), context);

    /// <summary>FASTER writes a page at a time (4 MiB); the files take it in pieces of this size, one
    /// after another. The write-ahead log's synchronous write of a batch goes to the same disk and
    /// waits behind whatever the disk was given before it, and it is on the path of every
    /// acknowledgement, which the store's write is not: in a 10 M-fact bulk load the log's write
    /// took 1.5 ms on average with the store's pages in pieces against 1.8 ms behind whole pages
    /// (benchmarks/RESULTS.md, Ingestion).</summary>
    private const uint WritePieceBytes = 1 << 20;

    /// <remarks>The form FASTER's store flushes its pages with.</remarks>
    public override void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context) =>
        WritePieces(
            alignedSourceAddress,
            alignedDestinationAddress,
            numBytesToWrite,
            written: 0,
            Reporting(callback, (long)(alignedDestinationAddress / (ulong)SegmentSize), (long)(alignedDestinationAddress % (ulong)SegmentSize)),
            context);

    /// <summary>Writes the piece at <paramref name="written"/> bytes into the write, and the next
    /// once it completes; <paramref name="done"/> hears of the first failure, or of the last piece.</summary>
    private void WritePieces(IntPtr source, ulong destination, uint bytes, uint written, DeviceIOCompletionCallback done, object context)
    {
        uint piece = Math.Min(WritePieceBytes, bytes - written);
        Files.WriteAsync(
            source + (nint)written,
            destination + written,
            piece,
            (errorCode, numBytes, _) =>
            {
                if (errorCode != 0)
                {
                    done(errorCode, written + numBytes, context);
                }
                else if (written + piece == bytes)
                {
                    done(0, bytes, context);
                }
                else
                {
                    WritePieces(source, destination, bytes, written + piece, done, context);
                }
            },
            context);
    }

    /// <summary>The completion of a write to file <paramref name="segment"/> at <paramref name="offset"/>,
    /// reporting a failure before FASTER hears of it.</summary>
    private DeviceIOCompletionCallback Reporting(DeviceIOCompletionCallback callback, long segment, long offset) =>
        (errorCode, numBytes, context) =>
        {
            if (errorCode != 0)
            {
                writeFailed($"a write to {FileName}.{segment} at offset {offset} failed (error code {errorCode})");
            }

            callback(errorCode, numBytes, context);
        };

    // FASTER's requests to delete files: held until DeleteUntil (see the class summary).
    public override void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result) => callback(result);

    public override void TruncateUntilAddress(long toAddress)
    {
    }

    public override void TruncateUntilSegmentAsync(int toSegment, AsyncCallback callback, IAsyncResult result) => callback(result);

    public override void TruncateUntilSegment(int toSegment)
    {
    }
}
