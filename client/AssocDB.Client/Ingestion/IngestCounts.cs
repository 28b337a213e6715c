namespace AssocDB.Client.Ingestion;

/// <summary>Where an ingest stands; every count is of items (facts and concepts) unless named otherwise.</summary>
/// <param name="Read">Items read from the input, rejected lines included.</param>
/// <param name="Facts">Facts acknowledged durable (stored or duplicate) in this run.</param>
/// <param name="Stored">Items that changed the collection.</param>
/// <param name="Duplicate">Items already stored exactly so.</param>
/// <param name="Rejected">Items rejected, by the reader or by the server.</param>
/// <param name="Resumed">Items not rejected in batches an earlier run or attempt of the session had made
/// durable (answered as already applied, so which of them changed the collection is not known).</param>
/// <param name="Batches">Batches acknowledged.</param>
/// <param name="Reconnects">Times the stream was reopened after a connection failure.</param>
public sealed record IngestCounts(long Read, long Facts, long Stored, long Duplicate, long Rejected, long Resumed, long Batches, int Reconnects)
{
    /// <summary>True when the run stopped at a rejected item under <see cref="BulkIngestOptions.StopOnReject"/>.</summary>
    public bool StoppedOnReject { get; init; }
}
