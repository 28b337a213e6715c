namespace AssocDB.Engine;

/// <summary>How an <see cref="AssocDatabase"/> stores data and computes. Plain values: the engine
/// never reads the command line or the environment.</summary>
public sealed record DatabaseOptions
{
    /// <summary>Folder holding every collection (one sub-folder each). Created if missing.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Compute device for the concept matrices: <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>How often each collection with new writes is checkpointed (and its log truncated);
    /// <see cref="TimeSpan.Zero"/> turns periodic checkpoints off. Shorter means faster reopen.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Whether closing the database checkpoints every collection first, so the next open
    /// has no log to replay.</summary>
    public bool CheckpointOnClose { get; init; } = true;

    /// <summary>Bytes of disk kept free under the data folder: a write that would leave less is
    /// refused (ResourceExhausted; nothing is written, the collection keeps serving and takes writes
    /// again once there is room). Checkpoints and compactions may use the reserve, which is kept for
    /// them, but are skipped when what they may write does not fit in what is free. Writes stop short
    /// of a full disk because FASTER ignores some failed writes (its checkpoint records, and the files
    /// a checkpoint deletes as it writes them). The default covers a full log page and a checkpoint of
    /// the default state memory with room to spare; 0 turns the check off.</summary>
    public long MinFreeDiskBytes { get; init; } = 1L << 28;

    /// <summary>Whether every collection must open for the database to open. False (the default):
    /// a collection whose open fails (damaged or missing files, an I/O error) is logged and kept as
    /// unavailable, and the others are served; every operation naming it is refused
    /// (FailedPrecondition, with the reason), and dropping it deletes its folder. True: its error
    /// fails <see cref="AssocDatabase.Open"/>, as before this option existed. Running out of memory
    /// fails the open either way: the collection may be whole, and a smaller load would open it.</summary>
    public bool RequireAllCollections { get; init; }

    /// <summary>The most collections the database may hold; a create past it is refused
    /// (ResourceExhausted). Each collection keeps buffers in memory whether it holds data or not (two
    /// log pages and the state store's memory: about 100 MiB with the defaults below; the state
    /// store's index takes memory as records fill it, see <see cref="StateIndexBytes"/>), so
    /// this bounds the memory that creating collections can take (unavailable ones, holding none, do
    /// not count). A folder holding more (written under a higher limit) still opens whole.</summary>
    public int MaxCollections { get; init; } = 100;

    /// <summary>How many bulk-ingest sessions per collection keep their mark (the last durable
    /// sequence, by which an ingest resumes and a resent batch is recognised). A session past it
    /// replaces the least recently written one's mark, so the marks do not grow with the sessions a
    /// long-lived collection has run; a forgotten session reads as new (progress −1), so resuming it
    /// sends its input again from the start. Each mark takes about 200 bytes of memory and a small
    /// state-store record. After it is lowered, a collection holding more marks keeps them until a
    /// new session's first batch, which also deletes the least recently written ones beyond it, for
    /// good (in memory, the log and the state store), and moves the kept marks at or past it down
    /// to the ids freed; the log entry doing so is not read by versions before 2026-12-01, nor by
    /// those of that day before the moves (tag 8), which refuse the collection's log as damaged
    /// until a checkpoint covers the entry (a clean close's checkpoint empties the log).</summary>
    public int IngestSessionsKept { get; init; } = 10_000;

    /// <summary>log2 of the write-ahead log's page size, for collections created from now on (an
    /// existing collection keeps the size its log was written with). One write batch must fit in a
    /// page, so this bounds the encoded size of a batch: 25 → 32 MiB.</summary>
    public int LogPageSizeBits { get; init; } = 25;

    /// <summary>Bytes of the state store's hash index per collection (a power of two from 512 to
    /// 2^36, FASTER's limits; 64 bytes per bucket of 7 entries, about 3.7 million records' worth at
    /// the default). Past that, overflow buckets absorb the records, and each write of a new record
    /// walks its bucket's chain of them, one cache miss per bucket: with a 4 MiB index a 10 M-fact
    /// bulk load spent a third of the server's time there (benchmarks/RESULTS.md, "Ingestion").
    /// Only the buckets records land in take memory, so an index larger than a collection's records
    /// costs little (an empty collection's 32 MiB index added about 2 MB of resident memory), but
    /// each checkpoint writes the whole index to disk. It takes effect when a collection's store
    /// starts without a checkpoint (a new collection, or one not checkpointed yet); a checkpointed
    /// store recovers the index size it was checkpointed with. The index is not
    /// grown as the store grows: FASTER's in-place doubling splits only the entries of records still
    /// in memory and copies the rest into both halves, so a store larger than its memory keeps its
    /// chains and doubles its overflow. Size it for the records a collection will hold, about 8
    /// bytes per fact and concept.</summary>
    public long StateIndexBytes { get; init; } = 1L << 25;

    /// <summary>Bytes of the state store's in-memory log per collection; older records stay on disk.
    /// Queries never read the store (they use the in-memory indexes); it is read only when a
    /// collection opens, sequentially, so a small buffer costs nothing at query time. The store's
    /// page is a quarter of it, at most 4 MiB, and one record must fit in a page; the page is fixed
    /// once the store has checkpointed (the memory is then raised to four pages if this is less).</summary>
    public long StateMemoryBytes { get; init; } = 1L << 25;

    /// <summary>Bytes of one state-store log file (a power of two, at least 64 KiB; the store's page is
    /// at most this). Compaction returns disk a whole file at a time, so smaller files free space
    /// sooner. It takes effect when a collection's store starts without a checkpoint; one that has
    /// checkpointed keeps its sizes.</summary>
    public long StateSegmentBytes { get; init; } = 1L << 26;

    /// <summary>How long a collection's checkpoint may take before it is given up (it must be
    /// positive); null (the default) gives a minute plus the time to write the state store's memory
    /// and index at 1 MiB/s (2.1 minutes with the defaults above), as a fold-over checkpoint writes
    /// at most those. FASTER never finishes a checkpoint whose write failed (e.g. on a full disk);
    /// a failed write ends the wait at once, this bounds one that neither completes nor fails. Once
    /// one is given up, that collection takes no more checkpoints until the database is reopened,
    /// but keeps taking writes, which its log keeps; the next open replays them. A close waits for
    /// the state store at most this plus the time to rewrite its log at 1 MiB/s.</summary>
    public TimeSpan? StateCheckpointTimeout { get; init; }
}
