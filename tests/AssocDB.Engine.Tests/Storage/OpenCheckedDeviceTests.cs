using System.Runtime.InteropServices;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using FASTER.core;

namespace AssocDB.Engine.Tests.Storage;

// What the open-checking device knows of a log file lasts as long as the file: FASTER's truncation
// removes files through the device it wraps, so the files it truncated stayed known, one entry (for
// writes, one for reads) per file for the process's life.
public sealed class OpenCheckedDeviceTests : IDisposable
{
    private const long SegmentBytes = 1 << 12;

    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Files_removed_by_a_truncation_are_forgotten()
    {
        string baseName = Path.Combine(_folder.Path, "log");
        using var device = new OpenCheckedDevice(Devices.CreateLogDevice(baseName));
        var epoch = new LightEpoch();
        device.Initialize(SegmentBytes, epoch);
        for (int segment = 0; segment < 6; segment++)
        {
            await WriteSectorAsync(device, segment);
        }

        Assert.Equal(6, device.KnownFiles);

        device.TruncateUntilSegment(2);
        Assert.Equal(4, device.KnownFiles);
        device.TruncateUntilAddress(4 * SegmentBytes);
        Assert.Equal(2, device.KnownFiles);
        Assert.Equal(["log.4", "log.5"], Directory.GetFiles(_folder.Path).Select(Path.GetFileName).Order());
    }

    /// <summary>Writes one sector at the start of <paramref name="segment"/>'s file.</summary>
    private static unsafe Task WriteSectorAsync(IDevice device, int segment)
    {
        var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void* sector = NativeMemory.AlignedAlloc(device.SectorSize, device.SectorSize);
        NativeMemory.Clear(sector, device.SectorSize);
        device.WriteAsync((IntPtr)sector, segment, 0, device.SectorSize, (errorCode, _, _) =>
        {
            NativeMemory.AlignedFree(sector);
            if (errorCode == 0)
            {
                written.SetResult();
            }
            else
            {
                written.SetException(new IOException($"the write failed (error code {errorCode})"));
            }
        }, null!);
        return written.Task;
    }
}
