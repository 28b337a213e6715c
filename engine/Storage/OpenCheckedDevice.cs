using System.Collections.Concurrent;
using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Opens a log file here before FASTER's device opens it, and fails that read or write at once,
/// without passing it on, when the file cannot be opened. FASTER's local device
/// (<c>ManagedLocalStorageDevice</c>, FASTER 2.6.5) opens files through a pool that counts a handle
/// before creating it: when the creation throws (permission denied, a link into a missing folder, a
/// file that refuses unbuffered I/O) the I/O fails, but the count stays, and disposing the device
/// then waits for that handle forever, so the close of a collection whose next log file could not
/// be opened never returned. The file is opened as FASTER opens it (unbuffered, write-through,
/// created if missing), so what fails here would fail there.
/// </summary>
/// <remarks>
/// FASTER's pool opens a file for its first read (or write), and again only when every handle it
/// holds is busy: while another read (or write) of the file is in flight, since it never closes a
/// handle until the file is removed. So the file is checked for the first I/O and for each one that
/// starts while another is in flight, here counted from when it is passed on until its completion,
/// which FASTER calls after taking the handle back: a file made unopenable while the collection
/// runs (deleted and replaced, its permissions changed) fails the I/O that would have opened it.
/// Reads and writes stop here once the device is retired (see <see cref="Retire"/>); a write also
/// after the open, which can wait (on a FIFO, until a reader comes), so that a write held in it is
/// not passed on once retired.
/// </remarks>
internal sealed class OpenCheckedDevice(IDevice files) : ForwardingDevice(files)
{
    /// <summary>What a refused read or write reports: the error code FASTER's own device gives an
    /// I/O that could not start.</summary>
    private const uint RefusedErrorCode = uint.MaxValue;

    /// <summary>FASTER's flag for unbuffered I/O (O_DIRECT on Linux), which its devices set by default.</summary>
    private const FileOptions Unbuffered = (FileOptions)0x20000000;

    /// <summary>The files read or written, by segment and whether for writing.</summary>
    private readonly ConcurrentDictionary<(int Segment, bool Write), Access> _accesses = new();

    /// <summary>Set by <see cref="Retire"/>.</summary>
    private volatile bool _retired;

    /// <summary>How many files, for reads and for writes apart, the device knows of: those read or
    /// written since their removal or the device's start.</summary>
    internal int KnownFiles => _accesses.Count;

    /// <summary>
    /// Passes no more reads or writes on; each one from now on fails at once, touching no file. For
    /// the devices of a store left undisposed (<see cref="StateStore.OutOfService"/>): work still
    /// running in it goes on writing and reading, and both open the files by their paths (a read
    /// creates a missing file), so once the collection is dropped and created again, or reopened,
    /// they would land in the files of the store that took its place.
    /// </summary>
    public void Retire() => _retired = true;

    /// <summary>Why segment <paramref name="segment"/>'s file could not be opened for writing, while
    /// it has not opened since (and was not removed): the cause of a write to it that failed.</summary>
    public string? WriteRefusal(int segment) => _accesses.TryGetValue((segment, true), out Access? access) ? access.Refusal : null;

    /// <summary>The first write to segment <paramref name="segment"/>'s file that completed with an
    /// error, since the file was last removed (or the device started), or null. FASTER only logs a
    /// failed write of a checkpoint file and goes on, and a later write at a higher offset can give
    /// the file its full length around a hole: its length alone does not show the failure.</summary>
    public string? WriteFailure(int segment) => _accesses.TryGetValue((segment, true), out Access? access) ? access.Failure : null;

    public override void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (Writes(segmentId, ref callback))
        {
            Files.WriteAsync(sourceAddress, segmentId, destinationAddress, numBytesToWrite, callback, context);
        }
        else
        {
            callback(RefusedErrorCode, 0, context);
        }
    }

    public override void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        if (Writes(Segment(alignedDestinationAddress), ref callback))
        {
            Files.WriteAsync(alignedSourceAddress, alignedDestinationAddress, numBytesToWrite, callback, context);
        }
        else
        {
            callback(RefusedErrorCode, 0, context);
        }
    }

    public override void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context)
    {
        if (!_retired && Opens(segmentId, write: false, ref callback))
        {
            Files.ReadAsync(segmentId, sourceAddress, destinationAddress, readLength, callback, context);
        }
        else
        {
            callback(RefusedErrorCode, 0, context);
        }
    }

    public override void ReadAsync(ulong alignedSourceAddress, IntPtr alignedDestinationAddress, uint aligned_read_length, DeviceIOCompletionCallback callback, object context)
    {
        if (!_retired && Opens(Segment(alignedSourceAddress), write: false, ref callback))
        {
            Files.ReadAsync(alignedSourceAddress, alignedDestinationAddress, aligned_read_length, callback, context);
        }
        else
        {
            callback(RefusedErrorCode, 0, context);
        }
    }

    // A file removed may be created again under the same name: it is checked again then.
    public override void RemoveSegment(int segment)
    {
        Forget(removed => removed == segment);
        Files.RemoveSegment(segment);
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        Forget(removed => removed == segment);
        Files.RemoveSegmentAsync(segment, callback, result);
    }

    // FASTER's device removes the files it truncates by itself, without calling RemoveSegment here.
    public override void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result)
    {
        Forget(removed => removed < Segment((ulong)toAddress));
        Files.TruncateUntilAddressAsync(toAddress, callback, result);
    }

    public override void TruncateUntilAddress(long toAddress)
    {
        Forget(removed => removed < Segment((ulong)toAddress));
        Files.TruncateUntilAddress(toAddress);
    }

    public override void TruncateUntilSegmentAsync(int toSegment, AsyncCallback callback, IAsyncResult result)
    {
        Forget(removed => removed < toSegment);
        Files.TruncateUntilSegmentAsync(toSegment, callback, result);
    }

    public override void TruncateUntilSegment(int toSegment)
    {
        Forget(removed => removed < toSegment);
        Files.TruncateUntilSegment(toSegment);
    }

    public override void Reset()
    {
        _accesses.Clear();
        Files.Reset();
    }

    /// <summary>Whether a write to segment <paramref name="segment"/> is passed on: asked before the
    /// open too, as the open creates a missing file. One refused after the open completes through
    /// <paramref name="callback"/> as <see cref="Opens"/> left it, which ends its count.</summary>
    private bool Writes(int segment, ref DeviceIOCompletionCallback callback) => !_retired && Opens(segment, write: true, ref callback) && !_retired;

    /// <summary>The segment an address lies in; a device never given a segment size (a
    /// checkpoint file's) keeps one file, segment 0.</summary>
    private int Segment(ulong address) => SegmentSize > 0 ? (int)(address / (ulong)SegmentSize) : 0;

    /// <summary>Forgets the files of the segments <paramref name="removed"/> picks: removed, each is
    /// checked again if read or written again.</summary>
    private void Forget(Func<int, bool> removed)
    {
        foreach ((int Segment, bool Write) file in _accesses.Keys)
        {
            if (removed(file.Segment))
            {
                _accesses.TryRemove(file, out _);
            }
        }
    }

    /// <summary>Whether segment <paramref name="segment"/>'s file opens for an I/O, checked where
    /// FASTER's pool would open it (see the remarks); records why not. When it does, the I/O counts as
    /// in flight until <paramref name="callback"/>, which is replaced by one that ends the count.</summary>
    private bool Opens(int segment, bool write, ref DeviceIOCompletionCallback callback)
    {
        Access access = _accesses.GetOrAdd((segment, write), _ => new Access());
        bool concurrent = Interlocked.Increment(ref access.InFlight) > 1;
        if (!access.Opened || concurrent)
        {
            string path = $"{FileName}.{segment}";
            try
            {
                using var file = new FileStream(
                    path, FileMode.OpenOrCreate, write ? FileAccess.Write : FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.WriteThrough | FileOptions.Asynchronous | Unbuffered);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Interlocked.Decrement(ref access.InFlight);
                access.Refusal = $"{path} could not be opened for {(write ? "writing" : "reading")} ({e.GetType().Name}: {e.Message})";
                return false;
            }

            access.Refusal = null;
            access.Opened = true;
        }

        DeviceIOCompletionCallback completed = callback;
        callback = (errorCode, numBytes, context) =>
        {
            if (write && errorCode != 0)
            {
                Interlocked.CompareExchange(ref access.Failure, $"a write to {FileName}.{segment} failed (error code {errorCode})", null);
            }

            Interlocked.Decrement(ref access.InFlight);
            completed(errorCode, numBytes, context);
        };
        return true;
    }

    /// <summary>What is known of a file's opening for reads, or for writes.</summary>
    private sealed class Access
    {
        /// <summary>Reads (or writes) passed on and not yet completed.</summary>
        public int InFlight;

        /// <summary>Whether the file has opened once: FASTER's pool holds a handle from then on.</summary>
        public volatile bool Opened;

        /// <summary>Why the file last failed to open, until it opens again.</summary>
        public volatile string? Refusal;

        /// <summary>The first write that completed with an error (see <see cref="WriteFailure"/>).</summary>
        public string? Failure;
    }
}
