using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine;

/// <summary>
/// A collection folder that could not be opened when the database opened, or that a drop closed
/// but could not delete (its folder left under its name). It is kept in the
/// catalog, not skipped, so that its data stays visible and its name taken: every operation naming
/// it is refused with the reason, a create of its name too (the folder holds data), and a drop
/// deletes the folder.
/// </summary>
/// <param name="directory">The collection's folder.</param>
/// <param name="manifest">Its manifest, or null when that could not be read (then the folder alone
/// identifies it, and a name answers for it when the folder is named after that name).</param>
/// <param name="error">Why the open failed: <see cref="AssocDatabase"/>'s error naming the
/// collection and its folder, with the original as its inner exception.</param>
/// <param name="failure">What happened to it: <see cref="OpenFailed"/> or <see cref="DropFailed"/>.</param>
internal sealed class UnavailableCollection(string directory, CollectionManifest? manifest, Exception error, string failure = UnavailableCollection.OpenFailed)
{
    /// <summary>The folder could not be opened when the database opened.</summary>
    public const string OpenFailed = "could not be opened when the database opened";

    /// <summary>A drop closed the collection, but its folder could not be deleted.</summary>
    public const string DropFailed = "could not be deleted by a drop, which closed the collection";

    public string Directory => directory;

    /// <summary>The name in its manifest; null when the manifest could not be read.</summary>
    public string? Name => manifest?.Name;

    /// <summary>The folder's name inside the data folder.</summary>
    public string Folder { get; } = Path.GetFileName(directory);

    /// <summary>The cause, without the collection and folder that the error's own message adds.</summary>
    public string Reason { get; } = AssocDatabase.WhatHappened(error.InnerException ?? error);

    /// <summary>The collection for logs: its name, or that it has none readable.</summary>
    public string DisplayName => Name is null ? "(name unknown: its manifest is unreadable)" : $"'{Name}'";

    /// <summary>Whether a request naming <paramref name="name"/>, whose folder would be
    /// <paramref name="folder"/>, means this collection: by its manifest's name, or, when the
    /// manifest is lost, by the folder that name hashes to.</summary>
    public bool IsNamed(string name, string folder) => string.Equals(Name, name, StringComparison.Ordinal) || string.Equals(Folder, folder, StringComparison.Ordinal);

    public CollectionInfo Describe() =>
        new(Name ?? "", manifest?.Dimension ?? 0, manifest?.Metric ?? Metric.Cosine, manifest?.Precision ?? StoragePrecision.Float32, 0, 0, 0)
        {
            State = CollectionState.Unavailable,
            UnavailableReason = Reason,
            Folder = Folder,
        };

    /// <summary>The refusal of an operation naming the collection (by <paramref name="name"/>, in
    /// request field <paramref name="field"/>). FailedPrecondition, not NotFound: the data exists,
    /// and the way on is to repair or discard it.</summary>
    public EngineError Refusal(string name, string field) => new(ErrorCode.FailedPrecondition, field,
        $"collection '{name}' is unavailable: its folder {directory} {failure} ({Reason}); " + WayOn);

    /// <summary>What a user can do: a collection of a newer format is whole, and a drop would
    /// discard it for nothing.</summary>
    private string WayOn { get; } = (error.InnerException ?? error) is NewerFormatException
        ? "its files are not damaged: open the data folder with the AssocDB version that wrote them, or a later one"
        : "drop the collection to discard its data, or repair or move the folder and reopen the database";
}
