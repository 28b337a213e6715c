using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>A FASTER device that passes every call to <paramref name="files"/>; the storage's
/// wrappers override what they change.</summary>
internal abstract class ForwardingDevice(IDevice files) : IDevice
{
    /// <summary>The device the calls go to.</summary>
    protected IDevice Files => files;

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

    public void Initialize(long segmentSize, LightEpoch epoch = null!, bool omitSegmentIdFromFilename = false) =>
        files.Initialize(segmentSize, epoch, omitSegmentIdFromFilename);

    public bool TryComplete() => files.TryComplete();

    public bool Throttle() => files.Throttle();

    public virtual void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context) =>
        files.WriteAsync(sourceAddress, segmentId, destinationAddress, numBytesToWrite, callback, context);

    public virtual void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context) =>
        files.ReadAsync(segmentId, sourceAddress, destinationAddress, readLength, callback, context);

    public virtual void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context) =>
        files.WriteAsync(alignedSourceAddress, alignedDestinationAddress, numBytesToWrite, callback, context);

    public virtual void ReadAsync(ulong alignedSourceAddress, IntPtr alignedDestinationAddress, uint aligned_read_length, DeviceIOCompletionCallback callback, object context) =>
        files.ReadAsync(alignedSourceAddress, alignedDestinationAddress, aligned_read_length, callback, context);

    public virtual void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result) =>
        files.TruncateUntilAddressAsync(toAddress, callback, result);

    public virtual void TruncateUntilAddress(long toAddress) => files.TruncateUntilAddress(toAddress);

    public virtual void TruncateUntilSegmentAsync(int toSegment, AsyncCallback callback, IAsyncResult result) =>
        files.TruncateUntilSegmentAsync(toSegment, callback, result);

    public virtual void TruncateUntilSegment(int toSegment) => files.TruncateUntilSegment(toSegment);

    public virtual void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result) =>
        files.RemoveSegmentAsync(segment, callback, result);

    public virtual void RemoveSegment(int segment) => files.RemoveSegment(segment);

    public long GetFileSize(int segment) => files.GetFileSize(segment);

    public virtual void Reset() => files.Reset();

    public void Dispose() => files.Dispose();
}
