using System.Diagnostics;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using FASTER.core;
using static AssocDB.Engine.Tests.Support.SmallStateStore;

namespace AssocDB.Engine.Tests.Storage;

// A checkpoint file that cannot be opened (a link into a missing folder, or a folder, where the
// checkpoint's file goes) fails that checkpoint at once, naming the file, keeps the checkpoint
// before it, and leaves the store in service. FASTER's device counts a file handle before creating
// it, so after a failed creation its disposal waited for that handle forever: FASTER disposes each
// checkpoint file's device within the checkpoint, which then hung until its timeout, the store taken
// out of service.
public sealed class UnopenableCheckpointFileTests : IDisposable
{
    private static readonly TimeSpan CheckpointTimeout = TimeSpan.FromSeconds(30);

    private readonly TempDirectory _folder = new();
    private readonly string _state;

    public UnopenableCheckpointFileTests() => _state = Path.Combine(_folder.Path, "state");

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData("cpr-checkpoints", "info.dat", false)]
    [InlineData("index-checkpoints", "info.dat", false)]
    [InlineData("index-checkpoints", "ht.dat", false)]
    [InlineData("cpr-checkpoints", "info.dat", true)]
    [InlineData("index-checkpoints", "ht.dat", true)]
    public async Task A_checkpoint_file_that_cannot_be_opened_fails_the_checkpoint_at_once_naming_it(string part, string fileName, bool folder)
    {
        var devices = new UnopenableFile(part, fileName, folder);
        var clock = new Stopwatch();
        using (StateStore store = OpenStore(devices))
        {
            Write(store, 0, 10);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, CheckpointTimeout));
            Write(store, 10, 20);
            devices.Armed = true;
            clock.Start();
            string failure = await store.CheckpointAsync(200, 2, 0, CheckpointTimeout) ?? "";
            Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
            Assert.NotNull(devices.Placed);
            Assert.Contains("did not reach disk whole", failure);
            string refusal = $"{devices.Placed} could not be opened for writing ({(folder ? "UnauthorizedAccessException" : "FileNotFoundException")}: ";
            Assert.True(failure.Contains(refusal, StringComparison.Ordinal), failure);
            Assert.Contains("the previous checkpoint is kept", failure);
            Assert.Null(store.OutOfService);

            // The next checkpoint, its files opening, replaces the previous one.
            Write(store, 20, 30);
            Assert.Null(await store.CheckpointAsync(300, 3, 0, CheckpointTimeout));
            clock.Restart();
        }

        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        AssertRecovers(300, 30);
    }

    [Fact]
    public async Task A_store_whose_checkpoint_file_could_not_be_opened_reopens_from_the_checkpoint_before()
    {
        var devices = new UnopenableFile("cpr-checkpoints", "info.dat", folder: false);
        using (StateStore store = OpenStore(devices))
        {
            Write(store, 0, 10);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, CheckpointTimeout));
            Write(store, 10, 20);
            devices.Armed = true;
            Assert.NotNull(await store.CheckpointAsync(200, 2, 0, CheckpointTimeout));
        }

        AssertRecovers(100, 10);
    }

    /// <summary>The store in the test's folder, with 64 KiB log files and pages.</summary>
    private StateStore OpenStore(INamedDeviceFactory? devices = null) => SmallStateStore.Open(_state, devices);

    private void AssertRecovers(long logAddress, int records) => SmallStateStore.AssertRecovers(_state, logAddress, records);

    /// <summary>FASTER's checkpoint files on local disk; once <see cref="Armed"/>, the next
    /// checkpoint's <paramref name="fileName"/> in its <paramref name="part"/> folder is made
    /// unopenable before FASTER opens it: a link into a missing folder, or a folder.</summary>
    private sealed class UnopenableFile(string part, string fileName, bool folder) : INamedDeviceFactory
    {
        private readonly LocalStorageNamedDeviceFactory _local = new();
        private string _baseName = "";

        public bool Armed { get; set; }

        /// <summary>The unopenable file last placed, or null.</summary>
        public string? Placed { get; private set; }

        public void Initialize(string baseName)
        {
            _baseName = baseName;
            _local.Initialize(baseName);
        }

        public IDevice Get(FileDescriptor fileInfo)
        {
            if (Armed && fileInfo.fileName == fileName && fileInfo.directoryName.StartsWith(part, StringComparison.Ordinal))
            {
                // FASTER names a device's file by appending its segment, ".0".
                string file = Path.Combine(_baseName, fileInfo.directoryName, fileInfo.fileName + ".0");
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                if (folder)
                {
                    Directory.CreateDirectory(file);
                }
                else
                {
                    File.CreateSymbolicLink(file, Path.Combine(_baseName, "missing", fileInfo.fileName));
                }

                Placed = file;
                Armed = false;
            }

            return _local.Get(fileInfo);
        }

        public IEnumerable<FileDescriptor> ListContents(string path) => _local.ListContents(path);

        public void Delete(FileDescriptor fileInfo) => _local.Delete(fileInfo);
    }
}
