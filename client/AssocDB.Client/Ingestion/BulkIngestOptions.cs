namespace AssocDB.Client.Ingestion;

/// <summary>How a <see cref="BulkIngester"/> batches, pipelines and retries.</summary>
public sealed record BulkIngestOptions
{
    /// <summary>The target collection.</summary>
    public required string Collection { get; init; }

    /// <summary>The session id: names one logical input within the collection, so that a rerun
    /// resumes where the last durable batch left off. Reuse it only for the same input.</summary>
    public required string Session { get; init; }

    /// <summary>Most items (facts plus concepts) per batch; at most the server's max_batch limit.</summary>
    public int BatchSize { get; init; } = 5000;

    /// <summary>A batch is closed early once its encoded size passes this many bytes, to stay well
    /// under the server's message limit when vectors are wide.</summary>
    public int MaxBatchBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>The collection's vector dimension, when known (0: unknown). The server logs a batch
    /// as one entry, which must fit its write-ahead log page (32 MiB by default), and every new
    /// concept a batch names gets a vector of this many floats in that entry: a batch is closed
    /// before the vectors its items could add pass <see cref="MaxLogEntryBytes"/>.</summary>
    public int CollectionDimension { get; init; }

    /// <summary>The most a batch's log entry may hold, counting every fact as naming two new
    /// concepts: half the server's default log page.</summary>
    public const int MaxLogEntryBytes = 16 * 1024 * 1024;

    /// <summary>Batches sent but not yet acknowledged; bounds the client's memory and hides latency.</summary>
    public int MaxInFlight { get; init; } = 4;

    /// <summary>Stop at the first rejected item: after a bad input line no later batch is sent (the
    /// part of a batch before the line still is); after an item the server refused, no batch is
    /// sent once its acknowledgement arrives, but batches already in flight (up to
    /// <see cref="MaxInFlight"/>) are stored.</summary>
    public bool StopOnReject { get; init; }

    /// <summary>Consecutive connection failures tolerated; a batch acknowledged resets the count.</summary>
    public int MaxRetries { get; init; } = 8;

    /// <summary>The wait before the first reconnect; it doubles after each failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest wait between reconnects.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(8);
}
