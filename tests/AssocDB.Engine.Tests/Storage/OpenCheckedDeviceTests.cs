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

    // A store out of service is left undisposed, and work still running in it went on reading its
    // log files by their paths: a read of a missing file created it, in the folder of whatever
    // store took its place.
    [Fact]
    public async Task A_retired_device_fails_reads_and_writes_and_creates_no_file()
    {
        string baseName = Path.Combine(_folder.Path, "log");
        using var device = new OpenCheckedDevice(Devices.CreateLogDevice(baseName));
        device.Initialize(SegmentBytes, new LightEpoch());
        await WriteSectorAsync(device, 0);

        device.Retire();
        Assert.NotEqual(0u, await SectorIOAsync(device, 0, write: false));
        Assert.NotEqual(0u, await SectorIOAsync(device, 1, write: false));
        Assert.NotEqual(0u, await SectorIOAsync(device, 2, write: true));
        Assert.Equal(["log.0"], Directory.GetFiles(_folder.Path).Select(Path.GetFileName));
    }

    // FASTER goes on with a checkpoint given up on once its writes complete, making a device for
    // each file it writes next; a local device creates its file's folder as it is made.
    [Fact]
    public async Task A_retired_checkpoint_factory_touches_no_file()
    {
        var factory = new OpenCheckedDeviceFactory(new LocalStorageNamedDeviceFactory());
        factory.Initialize(_folder.Path);
        using IDevice before = factory.Get(new FileDescriptor("token-1", "info"));
        before.Initialize(-1);
        await WriteSectorAsync(before, 0);

        factory.Retire();
        Assert.NotEqual(0u, await SectorIOAsync(before, 0, write: true));
        using IDevice after = factory.Get(new FileDescriptor("token-2", "info"));
        after.Initialize(-1);
        Assert.NotEqual(0u, await SectorIOAsync(after, 0, write: true));
        Assert.NotEqual(0u, await SectorIOAsync(after, 0, write: false));
        factory.Delete(new FileDescriptor("token-1", null));

        Assert.Equal(["token-1"], Directory.GetDirectories(_folder.Path).Select(Path.GetFileName));
        Assert.Equal(["info.0"], Directory.GetFiles(Path.Combine(_folder.Path, "token-1")).Select(Path.GetFileName));
    }

    /// <summary>Writes one sector at the start of <paramref name="segment"/>'s file.</summary>
    private static async Task WriteSectorAsync(IDevice device, int segment)
    {
        uint errorCode = await SectorIOAsync(device, segment, write: true);
        if (errorCode != 0)
        {
            throw new IOException($"the write failed (error code {errorCode})");
        }
    }

    /// <summary>Reads or writes the first sector of <paramref name="segment"/>'s file; the error code
    /// it completed with.</summary>
    private static unsafe Task<uint> SectorIOAsync(IDevice device, int segment, bool write)
    {
        var completed = new TaskCompletionSource<uint>(TaskCreationOptions.RunContinuationsAsynchronously);
        void* sector = NativeMemory.AlignedAlloc(device.SectorSize, device.SectorSize);
        NativeMemory.Clear(sector, device.SectorSize);
        DeviceIOCompletionCallback done = (errorCode, _, _) =>
        {
            NativeMemory.AlignedFree(sector);
            completed.SetResult(errorCode);
        };
        if (write)
        {
            device.WriteAsync((IntPtr)sector, segment, 0, device.SectorSize, done, null!);
        }
        else
        {
            device.ReadAsync(segment, 0, (IntPtr)sector, device.SectorSize, done, null!);
        }

        return completed.Task;
    }
}
