using System.Text.Json;

namespace AssocDB.Engine.Storage;

/// <summary>Small JSON files that logs depend on, replaced whole: written to a staging file,
/// flushed to disk, then renamed over the old one, so a crash leaves the old file or the new; the
/// folder is flushed after the rename, so a power loss does too.</summary>
internal static class DurableJson
{
    /// <summary>What the staging file's name adds to the file's.</summary>
    public const string StagingSuffix = ".tmp";

    public static void Replace<T>(string path, T value, JsonSerializerOptions? options = null)
    {
        string staging = path + StagingSuffix;
        using (var file = new FileStream(staging, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, value, options);
            file.Flush(flushToDisk: true);
        }

        File.Move(staging, path, overwrite: true);
        DirectoryDurability.Flush(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }
}
