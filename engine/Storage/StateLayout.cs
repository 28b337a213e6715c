using System.Numerics;
using System.Text.Json;

namespace AssocDB.Engine.Storage;

/// <summary>
/// The state store's page and file sizes. FASTER reads a log back correctly only with the sizes it
/// was written with (records never span pages, and files are addressed by size), so they are fixed
/// when a store starts without a checkpoint and kept beside it as <c>layout.json</c>; a later change
/// of the options applies only when the store starts over. <see cref="RecordsChecksummed"/>: the
/// store started since records carry checksums, so it holds none without one (see
/// <see cref="StateRecord"/>); a store from before holds both kinds. <see cref="OrderedKeys"/>: the
/// store started since its hash index is kept by <see cref="StateKeyHash"/>; a store from before
/// keeps FASTER's hash of the key's bytes for good, as its checkpointed index was built with it.
/// </summary>
internal sealed record StateLayout(long PageBytes, long SegmentBytes, bool RecordsChecksummed = false, bool OrderedKeys = false)
{
    public const string FileName = "layout.json";

    /// <summary>FASTER's default file size, which stores written before the layout was kept use.</summary>
    private const long LegacySegmentBytes = 1L << 30;

    /// <summary>
    /// The layout the store in <paramref name="directory"/> must open with: the kept one when the
    /// store has a checkpoint to recover; for a checkpointed store from before layouts were kept
    /// (which only a store that <paramref name="mayPredateLayouts"/> can be), the sizes it was
    /// written with (the page the options give, as then, and FASTER's default file size), kept from
    /// now on; otherwise (the store starts over, and every record it will hold is written by this
    /// version, replayed ones too) the options' sizes (a page of a quarter of the memory, at most
    /// 4 MiB and one file), checksummed records only and <paramref name="orderedKeys"/> (tests turn
    /// it off to make a store as versions before it did), kept from now on, but never a page
    /// smaller than a kept one: the write-ahead log that replays into the new store holds records
    /// accepted for that page.
    /// </summary>
    /// <exception cref="InvalidDataException">The store has a checkpoint, and lost the layout it
    /// was written with.</exception>
    public static StateLayout Resolve(string directory, long memoryBytes, long segmentBytes, bool mayPredateLayouts, bool orderedKeys = true)
    {
        string path = Path.Combine(directory, FileName);
        bool checkpointed = HasCheckpoint(directory);
        if (checkpointed && File.Exists(path))
        {
            return Read(path);
        }

        // Guessing FASTER's default file size for a store that had its own would misread its log
        // past the first file (a store over 64 MiB with the default options), and keep the guess.
        if (checkpointed && !mayPredateLayouts)
        {
            throw new InvalidDataException(
                $"{path} is missing, but the state store in {directory} has a checkpoint: the page and file sizes its log was written with are unknown, "
                + "and guessing them would misread it. Restore that file (from a backup of the collection); the store is left as it is");
        }

        // A power of two, as FASTER rounds it down to one anyway (and records are checked against it).
        long page = 1L << BitOperations.Log2((ulong)Math.Min(memoryBytes / 4, 1L << 22));
        StateLayout layout = checkpointed
            ? new StateLayout(page, LegacySegmentBytes)
            : new StateLayout(Math.Min(page, segmentBytes), segmentBytes, RecordsChecksummed: true, orderedKeys);
        StateLayout? current = File.Exists(path) ? Read(path) : null;
        if (!checkpointed && current?.PageBytes is long kept && kept > layout.PageBytes)
        {
            layout = layout with { PageBytes = kept, SegmentBytes = Math.Max(segmentBytes, kept) };
        }

        // Rewritten only when it changes: a store reopened as it was needs no disk space to open,
        // so a collection without a checkpoint still opens (and serves reads) on a full disk.
        if (layout != current)
        {
            DurableJson.Replace(path, layout);
        }

        return layout;
    }

    private static StateLayout Read(string path) =>
        JsonSerializer.Deserialize<StateLayout>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path} is empty");

    private static bool HasCheckpoint(string directory)
    {
        string checkpoints = Path.Combine(directory, "checkpoints", "cpr-checkpoints");
        return Directory.Exists(checkpoints) && Directory.EnumerateDirectories(checkpoints).Any();
    }
}
