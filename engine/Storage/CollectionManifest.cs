using System.Text.Json;
using System.Text.Json.Serialization;
using AssocDB.Engine.Model;

namespace AssocDB.Engine.Storage;

/// <summary>A collection's fixed definition, kept as <c>collection.json</c> in its folder, with the
/// page size its write-ahead log was created with (<c>LogPageSizeBits</c>): an entry never spans
/// pages, so a reader with other pages stops at the padding after a page's last entry and loses what
/// follows. Manifests written before it was recorded get it on their next open (see
/// <see cref="ReadPinningLogPage"/>).</summary>
internal sealed record CollectionManifest(
    string Name,
    int Dimension,
    Metric Metric,
    StoragePrecision Precision,
    int FormatVersion = 1,
    int? LogPageSizeBits = null)
{
    public const string FileName = "collection.json";

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

    /// <summary>Reads the manifest. One written before the log page size was recorded is given the
    /// size of <paramref name="logPageSizeBits"/> (the option its log was written with, unless it
    /// changed since) and rewritten, so later changes of the option leave its log alone.</summary>
    public static CollectionManifest ReadPinningLogPage(string directory, int logPageSizeBits)
    {
        CollectionManifest manifest = Read(directory);
        if (manifest.LogPageSizeBits is not null)
        {
            return manifest;
        }

        manifest = manifest with { LogPageSizeBits = logPageSizeBits };
        DurableJson.Replace(Path.Combine(directory, FileName), manifest, Json);
        return manifest;
    }

    private static CollectionManifest Read(string directory)
    {
        string path = Path.Combine(directory, FileName);
        using var file = File.OpenRead(path);
        return JsonSerializer.Deserialize<CollectionManifest>(file, Json)
            ?? throw new InvalidDataException($"{path} is empty");
    }
}
