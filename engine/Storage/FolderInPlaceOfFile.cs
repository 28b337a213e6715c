using System.Globalization;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Refuses a folder that stands where a collection's storage keeps a file, before anything opens
/// it. FASTER's local devices (<c>ManagedLocalStorageDevice</c>, FASTER 2.6.5) open a file through a
/// pool that counts the handle before creating it; when the creation throws, as it does for a
/// folder, the count stays, the read or write reports an error (which FASTER's checkpoint manager
/// only logs, going on with what its buffer held), and disposing the device waits for that handle
/// to come back, forever: an open that read a checkpoint's metadata through it never returned, and
/// neither did the close of a log that had read or written one.
/// </summary>
internal static class FolderInPlaceOfFile
{
    /// <summary>Throws if <paramref name="path"/> is a folder; <paramref name="owner"/> names what
    /// keeps a file there (e.g. "the state store").</summary>
    /// <exception cref="IOException">It is a folder; the message names it.</exception>
    public static void Refuse(string path, string owner)
    {
        if (Directory.Exists(path))
        {
            throw InPlaceOfFile(path, owner);
        }
    }

    /// <summary>Throws for the first folder in <paramref name="directory"/> named as one of the
    /// numbered files <c>BASE.N</c> FASTER keeps there (<paramref name="baseName"/> is BASE).</summary>
    /// <exception cref="IOException">One is a folder; the message names it.</exception>
    public static void RefuseNumbered(string directory, string baseName, string owner) =>
        RefuseAny(directory, name => IsNumbered(name, baseName + "."), owner);

    /// <summary>Throws for the first folder in <paramref name="directory"/> whose name
    /// <paramref name="isFileName"/> takes for one of the files kept there.</summary>
    /// <exception cref="IOException">One is a folder; the message names it.</exception>
    public static void RefuseAny(string directory, Func<string, bool> isFileName, string owner)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        foreach (string folder in Directory.EnumerateDirectories(directory))
        {
            if (isFileName(Path.GetFileName(folder)))
            {
                throw InPlaceOfFile(folder, owner);
            }
        }
    }

    /// <summary>Whether <paramref name="name"/> is <paramref name="prefix"/> followed by a number.</summary>
    public static bool IsNumbered(string name, string prefix) =>
        name.Length > prefix.Length
        && name.StartsWith(prefix, StringComparison.Ordinal)
        && long.TryParse(name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out _);

    private static IOException InPlaceOfFile(string folder, string owner) =>
        new($"{folder} is a folder, where {owner} keeps a file. The collection does not open until it is moved away "
            + "(and the file restored, from a backup of the collection); its files are left as they are");
}
