using System.Collections.Concurrent;
using FASTER.core;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Makes the checkpoint files' devices <see cref="OpenCheckedDevice"/>s. FASTER (2.6.5) disposes
/// each checkpoint file's device within the checkpoint (its metadata's once written, the hash
/// table's at the checkpoint's end), and a local device whose file could not be opened waits for
/// the handle it counted forever: a checkpoint whose file could not be opened hung until its
/// timeout, and the store was taken out of service. Here that file's writes fail at once, the
/// checkpoint ends, and its check finds the file missing (see <see cref="WriteRefusal"/> for why);
/// a write that fails later is reported too (<see cref="WriteFailure"/>), as FASTER only logs it.
/// </summary>
internal sealed class OpenCheckedDeviceFactory(INamedDeviceFactory devices) : INamedDeviceFactory
{
    /// <summary>The latest device made for each file (FASTER's name for it, without the segment),
    /// until the file is deleted.</summary>
    private readonly ConcurrentDictionary<string, OpenCheckedDevice> _made = new();

    private string _baseName = "";

    /// <summary>Set by <see cref="Retire"/>.</summary>
    private volatile bool _retired;

    public void Initialize(string baseName)
    {
        _baseName = baseName;
        devices.Initialize(baseName);
    }

    public IDevice Get(FileDescriptor fileInfo)
    {
        if (_retired)
        {
            // FASTER's local device creates the file's folder as it is made.
            var refusing = new OpenCheckedDevice(new NullDevice());
            refusing.Retire();
            return refusing;
        }

        var device = new OpenCheckedDevice(devices.Get(fileInfo));
        _made[device.FileName] = device;
        if (_retired)
        {
            device.Retire();
        }

        return device;
    }

    /// <summary>
    /// Touches no checkpoint file from now on: the devices made refuse every read and write (see
    /// <see cref="OpenCheckedDevice.Retire"/>), those made later too, without creating their
    /// folders, and deletions do nothing. For the checkpoints of a store left undisposed
    /// (<see cref="StateStore.OutOfService"/>): one given up on may still finish its writes, and
    /// FASTER then writes its metadata, into the folder of whatever store took this one's place.
    /// </summary>
    public void Retire()
    {
        _retired = true;
        foreach (OpenCheckedDevice device in _made.Values)
        {
            device.Retire();
        }
    }

    /// <summary>Why the file FASTER keeps for <paramref name="fileInfo"/> could not be opened for
    /// writing, when its latest device was refused that: a checkpoint's files are new (their folder
    /// is named by its token), so the reason is that checkpoint's own.</summary>
    public string? WriteRefusal(FileDescriptor fileInfo) =>
        _made.TryGetValue(PathOf(fileInfo), out OpenCheckedDevice? device) ? device.WriteRefusal(0) : null;

    /// <summary>Why a write to the file FASTER keeps for <paramref name="fileInfo"/> failed, when its
    /// latest device was refused the file (<see cref="WriteRefusal"/>) or a write to it completed
    /// with an error (<see cref="OpenCheckedDevice.WriteFailure"/>), or null.</summary>
    public string? WriteFailure(FileDescriptor fileInfo) =>
        _made.TryGetValue(PathOf(fileInfo), out OpenCheckedDevice? device) ? device.WriteRefusal(0) ?? device.WriteFailure(0) : null;

    public IEnumerable<FileDescriptor> ListContents(string path) => devices.ListContents(path);

    public void Delete(FileDescriptor fileInfo)
    {
        if (_retired)
        {
            return;
        }

        devices.Delete(fileInfo);
        string deleted = PathOf(fileInfo);
        foreach (string file in _made.Keys)
        {
            if (file == deleted || file.StartsWith(deleted + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                _made.TryRemove(file, out _);
            }
        }
    }

    private string PathOf(FileDescriptor fileInfo) => Path.Combine(_baseName, fileInfo.directoryName ?? "", fileInfo.fileName ?? "");
}
