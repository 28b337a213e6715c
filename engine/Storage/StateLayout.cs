using System.Text.Json;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The state store's page and file sizes. FASTER reads a log back correctly only with the sizes it
/// was written with (records never span pages, and files are addressed by size), so they are fixed
/// when a store starts without a checkpoint and kept beside it as <c>layout.json</c>; a later change
/// of the options applies only when the store starts over.
/// </summary>
internal sealed record StateLayout(long PageBytes, long SegmentBytes)
{
    private const string FileName = "layout.json";

    /// <summary>FASTER's default file size, which stores written before the layout was kept use.</summary>
    private const long LegacySegmentBytes = 1L << 30;

    /// <summary>The layout for a store from the options: a page of a quarter of its memory, at most
    /// 4 MiB (and at most one file).</summary>
    public static StateLayout FromOptions(long memoryBytes, long segmentBytes) =>
        new(Math.Min(Math.Min(memoryBytes / 4, 1L << 22), segmentBytes), segmentBytes);

    /// <summary>
    /// The layout a store in <paramref name="directory"/> must open with: the kept one when the store
    /// has a checkpoint to recover; for a checkpointed store from before layouts were kept, the page
    /// the options give (as then) and FASTER's default file size; otherwise <paramref name="requested"/>,
    /// which is kept from now on.
    /// </summary>
    public static StateLayout Resolve(string directory, StateLayout requested)
    {
        string path = Path.Combine(directory, FileName);
        if (HasCheckpoint(directory))
        {
            return File.Exists(path)
                ? JsonSerializer.Deserialize<StateLayout>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path} is empty")
                : requested with { SegmentBytes = LegacySegmentBytes };
        }

        // Written before the store makes its first checkpoint, and replaced whole (rename), so a
        // checkpointed store never lacks it or sees half of it.
        string staging = path + ".tmp";
        File.WriteAllText(staging, JsonSerializer.Serialize(requested));
        File.Move(staging, path, overwrite: true);
        return requested;
    }

    private static bool HasCheckpoint(string directory)
    {
        string checkpoints = Path.Combine(directory, "checkpoints", "cpr-checkpoints");
        return Directory.Exists(checkpoints) && Directory.EnumerateDirectories(checkpoints).Any();
    }
}
