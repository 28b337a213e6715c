using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The state store's log device, which deletes log files only when the store says so. FASTER
/// deletes the files below a checkpoint's begin address as soon as it has issued that checkpoint's
/// metadata write (<c>FasterKV.WriteHybridLogMetaInfo</c>), before anyone knows whether the
/// checkpoint reached disk; after a compaction those are the files the previous checkpoint reads,
/// so a checkpoint that then failed left none to recover from. Here FASTER's truncations do
/// nothing, and <see cref="DeleteUntil"/> deletes once a checkpoint has been read back whole.
/// Everything else goes to the wrapped device unchanged, segment removal included: FASTER calls it
/// only to trim files past the tail at recovery, which this store does not ask for.
/// </summary>
/// <remarks>
/// It also reports each failed write to <paramref name="writeFailed"/>, naming the file and
/// offset: FASTER never counts a page whose write failed as written, so whatever needs it written
/// (room in memory for more records, a compaction's flush, a checkpoint) waits for it forever, and
/// only the device sees why.
/// </remarks>
internal sealed class GuardedLogDevice(IDevice files, Action<string> writeFailed) : IDevice
{
    /// <summary>What a write refused after <see cref="Retire"/> reports (the error code FASTER's
    /// own devices give a write that could not start).</summary>
    private const uint RetiredErrorCode = uint.MaxValue;

    /// <summary>Set by <see cref="Retire"/>.</summary>
    private volatile bool _retired;

    public uint SectorSize => files.SectorSize;

    public string FileName => files.FileName;

    public long Capacity => files.Capacity;

    public long SegmentSize => files.SegmentSize;

    public int StartSegment => files.StartSegment;

    public int EndSegment => files.EndSegment;

    public int ThrottleLimit
    {
        get => files.ThrottleLimit;
        set => files.ThrottleLimit = value;
    }

    /// <summary>
    /// Sends no more writes to the files; each one from now on fails at once. For a store that is
    /// left undisposed (<see cref="StateStore.OutOfService"/>): work still running in it goes on
    /// flushing pages, and the wrapped device opens each file by its path, so once the collection
    /// is dropped and created again, or reopened, those writes would land in the files of the
    /// store that took its place. A write already passed on is not stopped: one on a file it had
    /// open reaches that file.
    /// </summary>
    public void Retire() => _retired = true;

    /// <summary>Deletes the log files wholly below <paramref name="address"/>: call only once a
    /// checkpoint whose begin address is at or past it has been read back whole.</summary>
    public void DeleteUntil(long address) => files.TruncateUntilAddress(address);

    public void Initialize(long segmentSize, LightEpoch epoch = null!, bool omitSegmentIdFromFilename = false) =>
        files.Initialize(segmentSize, epoch, omitSegmentIdFromFilename);

    public bool TryComplete() => files.TryComplete();

    public bool Throttle() => files.Throttle();

    public void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (_retired)
        {
            callback(RetiredErrorCode, 0, context);
            return;
        }

        files.WriteAsync(sourceAddress, segmentId, destinationAddress, numBytesToWrite, Reporting(callback, segmentId, (long)destinationAddress), context);
    }

    public void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context) =>
        files.ReadAsync(segmentId, sourceAddress, destinationAddress, readLength, callback, context);

    public void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (_retired)
        {
            callback(RetiredErrorCode, 0, context);
            return;
        }

        files.WriteAsync(
            alignedSourceAddress,
            alignedDestinationAddress,
            numBytesToWrite,
            Reporting(callback, (long)(alignedDestinationAddress / (ulong)SegmentSize), (long)(alignedDestinationAddress % (ulong)SegmentSize)),
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

    public void ReadAsync(ulong alignedSourceAddress, IntPtr alignedDestinationAddress, uint aligned_read_length, DeviceIOCompletionCallback callback, object context) =>
        files.ReadAsync(alignedSourceAddress, alignedDestinationAddress, aligned_read_length, callback, context);

    // FASTER's requests to delete files: held until DeleteUntil (see the class summary).
    public void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result) => callback(result);

    public void TruncateUntilAddress(long toAddress)
    {
    }

    public void TruncateUntilSegmentAsync(int toSegment, AsyncCallback callback, IAsyncResult result) => callback(result);

    public void TruncateUntilSegment(int toSegment)
    {
    }

    public void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result) =>
        files.RemoveSegmentAsync(segment, callback, result);

    public void RemoveSegment(int segment) => files.RemoveSegment(segment);

    public long GetFileSize(int segment) => files.GetFileSize(segment);

    public void Reset() => files.Reset();

    public void Dispose() => files.Dispose();
}
