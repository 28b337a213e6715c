using System.Text.Json;
using System.Text.Json.Serialization;
using AssocDB.Engine.Model;

namespace AssocDB.Engine.Storage;

/// <summary>A collection's fixed definition, kept as <c>collection.json</c> in its folder, with the
/// page size its write-ahead log was created with (<c>LogPageSizeBits</c>): an entry never spans
/// pages, so a reader with other pages stops at the padding after a page's last entry and loses what
/// follows. Manifests written before it was recorded get it on their next open (the collection
/// records it once its state store has kept its layout, which came in the same change).
/// <c>FormatVersion</c> is the newest on-disk format the collection's files may hold (see
/// <see cref="CurrentFormatVersion"/>).</summary>
internal sealed record CollectionManifest(
    string Name,
    int Dimension,
    Metric Metric,
    StoragePrecision Precision,
    int FormatVersion = 1,
    int? LogPageSizeBits = null)
{
    public const string FileName = "collection.json";

    /// <summary>
    /// The format this version writes: 3 since the write-ahead log's commit records are kept in
    /// two slots of one file (2 since write-ahead-log entries and state-store records carry
    /// checksums, 1 before). A collection is raised to it when opened, since its next write is in
    /// it. Versions before 2 never read this field, and misread a collection of format 2; a
    /// version from 2 on refuses a collection of a format newer than its own rather than misread it.
    /// </summary>
    public const int CurrentFormatVersion = 3;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes the manifest and flushes it to disk before returning.</summary>
    public void Write(string directory)
    {
        string path = Path.Combine(directory, FileName);
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        JsonSerializer.Serialize(file, this, Json);
        file.Flush(flushToDisk: true);
    }

    /// <summary>Replaces the manifest in <paramref name="directory"/> with this one; a crash leaves
    /// the old or the new.</summary>
    public void Replace(string directory) => DurableJson.Replace(Path.Combine(directory, FileName), this, Json);

    /// <summary>Reads the manifest in <paramref name="directory"/>.</summary>
    /// <exception cref="InvalidDataException">It is empty, or names no collection.</exception>
    /// <exception cref="NewerFormatException">It is of a newer format than this version reads.</exception>
    public static CollectionManifest Read(string directory)
    {
        string path = Path.Combine(directory, FileName);
        CollectionManifest manifest;
        using (var file = File.OpenRead(path))
        {
            manifest = JsonSerializer.Deserialize<CollectionManifest>(file, Json) ?? throw new InvalidDataException($"{path} is empty");
        }

        if (string.IsNullOrEmpty(manifest.Name))
        {
            throw new InvalidDataException($"{path} does not define a collection (its name is missing)");
        }

        return manifest.FormatVersion <= CurrentFormatVersion
            ? manifest
            : throw new NewerFormatException(
                $"{path} says the collection is of format {manifest.FormatVersion}, written by a newer AssocDB; this version reads formats up to {CurrentFormatVersion}. Open it with that version or a later one",
                manifest);
    }
}

/// <summary>A collection written by a newer AssocDB, which this version does not read. Its files are
/// not damaged: the manifest still names it (<see cref="Manifest"/>, its newer fields aside).</summary>
internal sealed class NewerFormatException(string message, CollectionManifest manifest) : NotSupportedException(message)
{
    public CollectionManifest Manifest => manifest;
}
