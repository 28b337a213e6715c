using Microsoft.Extensions.Logging;

namespace AssocDB.Engine;

/// <summary>The engine's log events, source-generated so that disabled levels cost nothing.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Collection {Collection} recovered: {Concepts} concepts, {Facts} facts, {Replayed} log entries replayed")]
    public static partial void CollectionRecovered(ILogger logger, string collection, int concepts, int facts, int replayed);

    [LoggerMessage(2, LogLevel.Debug, "Collection {Collection} checkpointed through log address {Address}")]
    public static partial void CheckpointTaken(ILogger logger, string collection, long address);

    [LoggerMessage(3, LogLevel.Error, "Checkpoint of {Collection} failed")]
    public static partial void CheckpointFailed(ILogger logger, Exception exception, string collection);

    [LoggerMessage(5, LogLevel.Critical, "Collection {Collection} stopped after a failed write; reopen the database to recover it from its log")]
    public static partial void CollectionFailed(ILogger logger, string collection, Exception exception);

    [LoggerMessage(9, LogLevel.Critical, "Collection {Collection} takes no writes after its log failed to write; it keeps serving reads, and a restart lets it write again")]
    public static partial void CollectionStoppedWrites(ILogger logger, string collection, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "Collection {Collection} skipped a checkpoint or compaction: {Reason}")]
    public static partial void CheckpointSkipped(ILogger logger, string collection, string reason);

    [LoggerMessage(27, LogLevel.Warning, "Collection {Collection} checkpointed, but {Reason}")]
    public static partial void OutdatedCheckpointKept(ILogger logger, string collection, string reason);

    [LoggerMessage(6, LogLevel.Information, "Collection {Collection} compacted its state store's log from {Before} to {After} bytes; the next checkpoint frees the disk")]
    public static partial void StateCompacted(ILogger logger, string collection, long before, long after);

    [LoggerMessage(23, LogLevel.Warning, "Collection {Collection}'s compaction met damage in its state store's files ({Damage}); every live record is written again from memory, and the checkpoint deletes the damaged file once it is durable")]
    public static partial void StoreRewrittenFromMemory(ILogger logger, string collection, string damage);

    [LoggerMessage(11, LogLevel.Information, "Removed {Folder}, the staging folder of a collection create or drop that did not finish")]
    public static partial void StagingFolderRemoved(ILogger logger, string folder);

    [LoggerMessage(24, LogLevel.Warning, "Could not remove {Folder}, the staging folder of a collection create or drop that did not finish; it holds no collection, and the next open tries again")]
    public static partial void StagingFolderKept(ILogger logger, Exception exception, string folder);

    [LoggerMessage(25, LogLevel.Error, "Collection folder {Folder} holds collection '{Name}', which {Other} holds too (a copy of a collection's folder?); it is left unavailable until one of them is moved out of the data folder")]
    public static partial void DuplicateCollection(ILogger logger, string folder, string name, string other);

    [LoggerMessage(4, LogLevel.Information, "Database opened at {Directory} on device {Device} with {Collections} collections ({Unavailable} more unavailable)")]
    public static partial void DatabaseOpened(ILogger logger, string directory, string device, int collections, int unavailable);

    [LoggerMessage(12, LogLevel.Error, "Collection {Collection} in {Folder} could not be opened and is unavailable (its calls are refused) until it is dropped, or repaired and the database reopened: {Reason}")]
    public static partial void CollectionUnavailable(ILogger logger, Exception exception, string collection, string folder, string reason);

    [LoggerMessage(7, LogLevel.Error, "Checkpoint of {Collection} at close failed; its log still holds every write, and the next open replays it")]
    public static partial void CloseCheckpointFailed(ILogger logger, Exception exception, string collection);

    [LoggerMessage(8, LogLevel.Warning, "Dropped {Collection}, but flushing the data folder {Directory} failed: a power loss now could bring it back")]
    public static partial void DropFlushFailed(ILogger logger, Exception exception, string collection, string directory);

    [LoggerMessage(20, LogLevel.Error, "Checkpoint of {Collection} failed and was discarded ({Reason}); its previous checkpoint and its log are kept")]
    public static partial void CheckpointNotDurable(ILogger logger, string collection, string reason);

    [LoggerMessage(22, LogLevel.Warning, "Collection {Collection} was recovered from the checkpoint before its newest, and its log replayed from address {Address}: its state store's newest {Problem} (a crash or a failed write while it was taken). That checkpoint was moved to {Folder}, which may be deleted")]
    public static partial void IncompleteCheckpointPassedOver(ILogger logger, string collection, string problem, long address, string folder);

    [LoggerMessage(26, LogLevel.Warning, "Collection {Collection} was rebuilt from its whole log, as its state store's only {Problem} (a crash or a failed write while it was taken). That checkpoint was moved to {Folder}, with the store's log files, which may be deleted")]
    public static partial void IncompleteOnlyCheckpointPassedOver(ILogger logger, string collection, string problem, string folder);

    [LoggerMessage(21, LogLevel.Critical, "State store of {Collection} is out of service until the database is reopened ({Reason}); the collection still takes writes, which its log keeps (it is no longer truncated), and the next open replays them")]
    public static partial void StoreOutOfService(ILogger logger, string collection, string reason);
}
