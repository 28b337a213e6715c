using System.Runtime.InteropServices;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using FASTER.core;

namespace AssocDB.Engine.Tests.Storage;

// The state store's device passes FASTER's page writes on in pieces, one after another: the file
// must hold the page exactly, and FASTER must hear of the write once, after its last piece, or at
// its first failure.
public sealed class GuardedLogDeviceTests : IDisposable
{
    private const long SegmentBytes = 1L << 24;

    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    private string BaseName => Path.Combine(_folder.Path, "hlog.log");

    [Fact]
    public async Task A_page_written_in_pieces_lands_whole_and_completes_once()
    {
        var failures = new List<string>();
        using GuardedLogDevice device = Device(failures);
        // Three and a half pieces and a sector, into the second file at an offset.
        const int Bytes = (7 << 19) + 512;
        const long Offset = 4096;
        byte[] page = new byte[Bytes];
        new Random(5).NextBytes(page);

        (uint errorCode, uint written, int completions) = await WriteAsync(device, SegmentBytes + Offset, page);

        Assert.Equal((0u, (uint)Bytes, 1), (errorCode, written, completions));
        Assert.Empty(failures);
        byte[] file = File.ReadAllBytes(BaseName + ".1");
        Assert.Equal(page, file.AsSpan((int)Offset, Bytes).ToArray());
    }

    [Fact]
    public async Task A_page_whose_first_piece_fails_completes_once_with_the_error_and_is_reported()
    {
        var failures = new List<string>();
        using GuardedLogDevice device = Device(failures);
        // The open-checking device refuses a file it cannot open: here a folder stands in its place.
        Directory.CreateDirectory(BaseName + ".2");

        (uint errorCode, _, int completions) = await WriteAsync(device, 2 * SegmentBytes, new byte[3 << 20]);

        Assert.NotEqual(0u, errorCode);
        Assert.Equal(1, completions);
        Assert.Equal([$"a write to {BaseName}.2 at offset 0 failed (error code {errorCode})"], failures);
    }

    private GuardedLogDevice Device(List<string> failures)
    {
        var device = new GuardedLogDevice(new OpenCheckedDevice(Devices.CreateLogDevice(BaseName)), failures.Add);
        device.Initialize(SegmentBytes, new LightEpoch());
        return device;
    }

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="address"/> from sector-aligned
    /// memory, as FASTER flushes a page; returns the first completion and how many there were when
    /// it came.</summary>
    private static async Task<(uint ErrorCode, uint Written, int Completions)> WriteAsync(IDevice device, long address, byte[] bytes)
    {
        var completed = new TaskCompletionSource<(uint, uint)>(TaskCreationOptions.RunContinuationsAsynchronously);
        int completions = 0;
        IntPtr source = CopyAligned(bytes, device.SectorSize);
        try
        {
            device.WriteAsync(source, (ulong)address, (uint)bytes.Length, (errorCode, written, _) =>
            {
                Interlocked.Increment(ref completions);
                completed.TrySetResult((errorCode, written));
            }, null!);
            (uint errorCode, uint written) = await completed.Task.WaitAsync(TimeSpan.FromMinutes(1));
            return (errorCode, written, Volatile.Read(ref completions));
        }
        finally
        {
            FreeAligned(source);
        }
    }

    private static unsafe IntPtr CopyAligned(byte[] bytes, uint alignment)
    {
        void* memory = NativeMemory.AlignedAlloc((nuint)bytes.Length, alignment);
        bytes.CopyTo(new Span<byte>(memory, bytes.Length));
        return (IntPtr)memory;
    }

    private static unsafe void FreeAligned(IntPtr memory) => NativeMemory.AlignedFree((void*)memory);
}
