using System.Runtime.InteropServices;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Makes a folder's entries durable. A rename or a new file reaches the disk with the folder's own
/// metadata, which flushing the file does not write: after a power loss a collection created (or
/// dropped, or a manifest replaced) just before could otherwise be back as it was, although the call
/// had returned. On Linux the folder is opened and fsync'ed, as databases do after such renames;
/// elsewhere .NET has no handle on a folder, and this does nothing.
/// </summary>
internal static partial class DirectoryDurability
{
    // O_RDONLY, the same on every Linux architecture (O_DIRECTORY is not: 0x10000 is O_DIRECT on arm64).
    private const int ReadOnly = 0;
    private const int Interrupted = 4; // EINTR
    private const int NotSupported = 22; // EINVAL: the file system does not sync this kind of file

    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        int descriptor = Open(directory, ReadOnly);
        if (descriptor < 0)
        {
            throw new IOException($"cannot open {directory} to flush its entries (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            int result;
            while ((result = Fsync(descriptor)) != 0 && Marshal.GetLastPInvokeError() == Interrupted)
            {
            }

            // Some file systems do not sync folders at all (EINVAL); there is nothing more to do.
            if (result != 0 && Marshal.GetLastPInvokeError() != NotSupported)
            {
                throw new IOException($"cannot flush the entries of {directory} to disk (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int descriptor);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int descriptor);
}
