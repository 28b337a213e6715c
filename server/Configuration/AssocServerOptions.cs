using System.Net;
using AssocDB.Engine;
using AssocDB.Engine.Vectors;

namespace AssocDB.Server.Configuration;

/// <summary>
/// The server's settings, section <c>AssocDB</c>: from appsettings.json, then environment variables
/// (<c>ASSOCDB__PORT=50052</c>, <c>ASSOCDB__LIMITS__MAXK=100</c>), then the command line
/// (<c>--port 50052</c>, <c>--AssocDB:Limits:MaxK=100</c>); later sources win. Checked by
/// <see cref="Validate"/> before anything listens.
/// </summary>
public sealed class AssocServerOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "AssocDB";

    /// <summary>The address the gRPC endpoint and the metrics port bind: an IP address or
    /// <c>localhost</c>. When <c>Kestrel:Endpoints</c> is configured (e.g. for TLS), it owns every
    /// gRPC endpoint, and this places the metrics port only.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The gRPC port (HTTP/2); 0 picks a free one.</summary>
    public int Port { get; set; } = 50051;

    /// <summary>The HTTP/1.1 port serving Prometheus metrics at <c>/metrics</c> on <see cref="Host"/>;
    /// -1 for none (metrics stay readable over HTTP/2 on the gRPC port); 0 picks a free one.</summary>
    public int MetricsPort { get; set; } = 9464;

    /// <summary>The data folder, created if missing; relative paths are from the working directory.</summary>
    public string DataDirectory { get; set; } = "./data";

    /// <summary>The compute device: <c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>; a CUDA device
    /// must exist on this machine.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>The interval of the engine's periodic checkpoints; the engine's default when null.</summary>
    public TimeSpan? CheckpointInterval { get; set; }

    /// <summary>Bytes of disk kept free under the data folder: writes that would leave less are
    /// refused (RESOURCE_EXHAUSTED) until there is room, and checkpoints that would not fit in what is
    /// free are skipped; 0 turns the check off. The engine's default (256 MiB) when null.</summary>
    public long? MinFreeDiskBytes { get; set; }

    /// <summary>Bytes of a collection's state-store hash index (the engine's
    /// <see cref="DatabaseOptions.StateIndexBytes"/>, 32 MiB, when null): a power of two from 512 to
    /// 2^36. About 8 bytes per fact and concept the collection will hold keeps its writes fast. It
    /// takes effect when a collection's store starts without a checkpoint (a new collection, or one
    /// not checkpointed yet); a checkpointed one keeps the size it was checkpointed with.</summary>
    public long? StateIndexBytes { get; set; }

    /// <summary>Whether the server starts only if every collection opens. False: a collection that
    /// cannot be opened (damaged or missing files, an I/O error) is logged and served as unavailable
    /// (its calls fail with FAILED_PRECONDITION giving the reason; dropping it deletes its folder)
    /// while the others are served. True: the server logs the error and exits with code 1.</summary>
    public bool RequireAllCollections { get; set; }

    /// <summary>The API key clients send as <c>authorization: Bearer …</c>; no auth when empty.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Allows listening on a non-loopback address without an API key (<c>--insecure</c>).</summary>
    public bool Insecure { get; set; }

    /// <summary>Bounds on what one request may ask.</summary>
    public LimitOptions Limits { get; set; } = new();

    /// <summary>How concurrent search calls are coalesced.</summary>
    public SearchBatchingOptions SearchBatching { get; set; } = new();

    /// <summary>How many learning jobs the server remembers.</summary>
    public JobOptions Jobs { get; set; } = new();

    /// <summary>Every problem with these settings, each a sentence naming the setting; empty when valid.</summary>
    /// <param name="kestrelEndpointUrls">The URLs under <c>Kestrel:Endpoints</c>, when configured.</param>
    public IReadOnlyList<string> Validate(IReadOnlyList<string> kestrelEndpointUrls)
    {
        var problems = new List<string>();
        // With Kestrel:Endpoints, Host still places the metrics port.
        bool hostUsed = kestrelEndpointUrls.Count == 0 || MetricsPort >= 0;
        IPAddress? address = null;
        if (hostUsed && !TryParseHost(Host, out address))
        {
            problems.Add($"{Section}:Host '{Host}' is not an IP address or 'localhost'.");
        }

        CheckPort(problems, nameof(Port), Port, allowNone: false);
        CheckPort(problems, nameof(MetricsPort), MetricsPort, allowNone: true);
        if (MetricsPort > 0 && MetricsPort == Port)
        {
            problems.Add($"{Section}:MetricsPort must differ from {Section}:Port ({Port}).");
        }

        if (MinFreeDiskBytes < 0)
        {
            problems.Add($"{Section}:MinFreeDiskBytes must be 0 (no check) or more (got {MinFreeDiskBytes}).");
        }

        if (StateIndexBytes is long indexBytes && !AssocDatabase.IsStateIndexSize(indexBytes))
        {
            problems.Add(
                $"{Section}:StateIndexBytes must be a power of two from {AssocDatabase.MinStateIndexBytes} to {AssocDatabase.MaxStateIndexBytes} (2^36) (got {indexBytes}).");
        }

        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            problems.Add($"{Section}:DataDirectory must name a folder.");
        }

        // Resolved here, not only when the engine opens in the background, so that a device this
        // machine lacks stops the server before it listens instead of after it reported itself up.
        if (!ComputeDevice.TryResolve(Device ?? "", out _, out string deviceError))
        {
            problems.Add($"{Section}:Device: {deviceError}.");
        }

        // PeriodicTimer's range: outside it periodic checkpoints would silently never run.
        if (CheckpointInterval is TimeSpan interval && (interval < TimeSpan.FromMilliseconds(1) || interval.TotalMilliseconds >= uint.MaxValue - 1))
        {
            problems.Add($"{Section}:CheckpointInterval must be from 1 ms to 49 days (got {interval}).");
        }

        // Clients' keys arrive trimmed (HTTP header values), so a key with outer whitespace, or only
        // whitespace, could never match: every call would be refused.
        if (!string.IsNullOrEmpty(ApiKey) && (string.IsNullOrWhiteSpace(ApiKey) || ApiKey.Trim().Length != ApiKey.Length))
        {
            problems.Add($"{Section}:ApiKey must not be blank or begin or end with whitespace.");
        }

        // HTTP/2 header values carry printable ASCII only: no client could send any other key.
        if (ApiKey is { } key && key.Any(c => c is < ' ' or > '~'))
        {
            problems.Add($"{Section}:ApiKey must be printable ASCII (characters 0x20 to 0x7E).");
        }

        if (string.IsNullOrEmpty(ApiKey) && !Insecure)
        {
            IEnumerable<string> exposed = kestrelEndpointUrls.Where(url => !IsLoopbackUrl(url));
            if (address is not null && !IPAddress.IsLoopback(address))
            {
                exposed = exposed.Append(Host);
            }

            foreach (string where in exposed)
            {
                problems.Add($"refusing to listen on non-loopback '{where}' without an API key: set {Section}:ApiKey (--api-key), or pass --insecure to accept unauthenticated clients.");
            }
        }

        Limits.Validate(problems);
        SearchBatching.Validate(problems);
        // A call of more queries than may wait at once would be refused for good, told to retry.
        if (SearchBatching.Enabled && SearchBatching.MaxQueuedQueries < Limits.MaxBatch)
        {
            problems.Add($"{Section}:SearchBatching:MaxQueuedQueries ({SearchBatching.MaxQueuedQueries}) must be at least {Section}:Limits:MaxBatch ({Limits.MaxBatch}), the most queries one search may hold: a larger search could never be queued.");
        }

        Jobs.Validate(problems);
        return problems;
    }

    /// <summary>Parses <see cref="Host"/>: an IP address, or <c>localhost</c> for the IPv4 loopback.</summary>
    public static bool TryParseHost(string host, out IPAddress address)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
            return true;
        }

        return IPAddress.TryParse(host, out address!);
    }

    /// <summary>Whether Kestrel binds <paramref name="url"/> to loopback only. It does for
    /// <c>localhost</c> and loopback IP addresses, and binds any other host name (and the wildcards
    /// <c>*</c> and <c>+</c>) to every interface. The host is read as Kestrel reads it, from the text:
    /// System.Uri turns the name <c>loopback</c> into <c>localhost</c>.</summary>
    private static bool IsLoopbackUrl(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0)
        {
            return false;
        }

        string authority = url[(scheme + 3)..].Split('/')[0];
        string host = authority.StartsWith('[')
            ? authority[1..Math.Max(1, authority.IndexOf(']', StringComparison.Ordinal))]
            : authority.Split(':')[0];
        return string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host, out IPAddress? ip) && IPAddress.IsLoopback(ip));
    }

    private static void CheckPort(List<string> problems, string name, int port, bool allowNone)
    {
        if (port is < 0 or > 65535 && !(allowNone && port == -1))
        {
            problems.Add($"{Section}:{name} must be 0..65535{(allowNone ? " or -1 for none" : "")} (got {port}).");
        }
    }
}

/// <summary>Bounds on one request. Violations are answered INVALID_ARGUMENT (a value out of range) or
/// RESOURCE_EXHAUSTED (too much at once), naming the field.</summary>
public sealed class LimitOptions
{
    /// <summary>The largest request or response message, in bytes.</summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>The largest k of search, relate and recall.</summary>
    public int MaxK { get; set; } = 1000;

    /// <summary>The most items in one batch (concepts, facts, names, queries).</summary>
    public int MaxBatch { get; set; } = 10_000;

    /// <summary>The deepest proof a related or relate query may ask for.</summary>
    public int MaxDepth { get; set; } = 8;

    /// <summary>The largest vector dimension of a new collection.</summary>
    public int MaxDimension { get; set; } = 4096;

    /// <summary>The most answers or edges one related or neighbors call returns.</summary>
    public int MaxResults { get; set; } = 10_000;

    /// <summary>The most collections the database may hold (each keeps about 100 MiB of buffers,
    /// empty or not); a create past it is refused.</summary>
    public int MaxCollections { get; set; } = 100;

    /// <summary>The most ingest streams open at once; each holds up to a message of batch in the
    /// engine, so this bounds the memory ingestion takes. One more is refused with
    /// RESOURCE_EXHAUSTED.</summary>
    public int MaxIngestStreams { get; set; } = 16;

    /// <summary>How long an ingest stream may wait on its client (for its next batch, or for it to
    /// take an acknowledgement) before the server ends the stream with UNAVAILABLE; a client still
    /// there reopens it and resumes after its last acknowledged batch. A frozen client, or a
    /// connection gone silent, would otherwise hold one of the stream slots
    /// (<see cref="MaxIngestStreams"/>) for good. The engine's time writing a batch does not count.</summary>
    public TimeSpan IngestIdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How many ingest sessions per collection keep their mark, by which an ingest
    /// resumes (see <see cref="DatabaseOptions.IngestSessionsKept"/>): a new session past it replaces
    /// the least recently written one, whose resume then starts over from its first item.</summary>
    public int IngestSessionsKept { get; set; } = 10_000;

    internal void Validate(List<string> problems)
    {
        Check(problems, nameof(MaxMessageBytes), MaxMessageBytes, 1024, int.MaxValue);
        Check(problems, nameof(MaxBatch), MaxBatch, 1, int.MaxValue);
        Check(problems, nameof(MaxCollections), MaxCollections, 1, int.MaxValue);
        Check(problems, nameof(MaxIngestStreams), MaxIngestStreams, 1, int.MaxValue);
        Check(problems, nameof(IngestSessionsKept), IngestSessionsKept, 1, int.MaxValue);
        // The range of a cancellation timer: outside it the timeout could not be set at all.
        if (IngestIdleTimeout < TimeSpan.FromMilliseconds(1) || IngestIdleTimeout.TotalMilliseconds >= uint.MaxValue - 1)
        {
            problems.Add($"{AssocServerOptions.Section}:Limits:{nameof(IngestIdleTimeout)} must be from 1 ms to 49 days (got {IngestIdleTimeout}).");
        }

        // The engine's own caps: a server limit above one would admit requests the engine then
        // refuses with its own bound in the message, not the server's.
        Check(problems, nameof(MaxK), MaxK, 1, VectorSearch.MaxK);
        Check(problems, nameof(MaxDepth), MaxDepth, 0, Collection.MaxRelatedDepth);
        Check(problems, nameof(MaxDimension), MaxDimension, 1, AssocDatabase.MaxDimension);
        Check(problems, nameof(MaxResults), MaxResults, 1, Collection.MaxAnswers);
    }

    private static void Check(List<string> problems, string name, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            string range = max == int.MaxValue ? $"at least {min}" : $"{min}..{max}, the engine's limit";
            problems.Add($"{AssocServerOptions.Section}:Limits:{name} must be {range} (got {value}).");
        }
    }
}

/// <summary>Micro-batching of search: concurrent calls are answered by one batched engine search.</summary>
public sealed class SearchBatchingOptions
{
    /// <summary>Coalesce concurrent calls; when false each call searches on its own.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The most queries in one engine search. Calls whose k are far apart are searched
    /// apart even within it (see <see cref="Search.SearchBatcher"/>).</summary>
    public int MaxBatch { get; set; } = 256;

    /// <summary>How long the first call of a batch may wait for others, in microseconds, rounded up
    /// to whole milliseconds (the timer's resolution). Calls that arrive while a search runs are
    /// batched without any wait, so the default 0 still coalesces under load without adding latency
    /// to a lone client.</summary>
    public int MaxDelayMicroseconds { get; set; }

    /// <summary>How long, from the end of a batch, the next batch may wait for the calls it answered
    /// to come back, in microseconds (rounded up to whole milliseconds; 0: no wait). Each answered
    /// call counts as one to come and each arriving call as one come; the next batch is searched as
    /// soon as none is to come, and those that have not come when the window closes are forgotten.
    /// Clients that send their next call as soon as they are answered then share one kernel call
    /// instead of splitting into two cohorts that alternate (measured at 64 clients: batches of 63
    /// instead of 30, 1.2–1.3× the throughput). A lone client, or calls after a pause longer than
    /// this, never wait; calls from clients that do not wait for their answers (a steady stream of
    /// independent requests) may each wait up to this long, so 0 gives them the lowest latency.</summary>
    public int ReturnWaitMicroseconds { get; set; } = 5_000;

    /// <summary>The most queries waiting for a batch, over all calls; a call that would pass it is
    /// refused with RESOURCE_EXHAUSTED (retry later) instead of growing the queue, and with it the
    /// server's memory and every waiting call's latency, without bound.</summary>
    public int MaxQueuedQueries { get; set; } = 65_536;

    internal void Validate(List<string> problems)
    {
        if (MaxBatch < 1)
        {
            problems.Add($"{AssocServerOptions.Section}:SearchBatching:MaxBatch must be at least 1 (got {MaxBatch}).");
        }

        if (MaxQueuedQueries < 1)
        {
            problems.Add($"{AssocServerOptions.Section}:SearchBatching:MaxQueuedQueries must be at least 1 (got {MaxQueuedQueries}).");
        }

        CheckMicroseconds(problems, nameof(MaxDelayMicroseconds), MaxDelayMicroseconds);
        CheckMicroseconds(problems, nameof(ReturnWaitMicroseconds), ReturnWaitMicroseconds);
    }

    private static void CheckMicroseconds(List<string> problems, string name, int value)
    {
        if (value is < 0 or > 1_000_000)
        {
            problems.Add($"{AssocServerOptions.Section}:SearchBatching:{name} must be 0..1000000 (got {value}).");
        }
    }
}

/// <summary>Learning jobs (learn, mine, evaluate) are kept in memory: running ones, and the most
/// recent finished ones so that clients can read their results.</summary>
public sealed class JobOptions
{
    /// <summary>Finished jobs kept; the oldest is forgotten when one more finishes.</summary>
    public int MaxFinished { get; set; } = 100;

    /// <summary>Jobs running at once, over all collections (each collection runs one at a time).
    /// Training uses every core and up to a GiB per step, so more at once only share the machine
    /// and multiply the memory; a job past the limit is refused with RESOURCE_EXHAUSTED.</summary>
    public int MaxRunning { get; set; } = 4;

    internal void Validate(List<string> problems)
    {
        if (MaxFinished < 1)
        {
            problems.Add($"{AssocServerOptions.Section}:Jobs:MaxFinished must be at least 1 (got {MaxFinished}).");
        }

        if (MaxRunning < 1)
        {
            problems.Add($"{AssocServerOptions.Section}:Jobs:MaxRunning must be at least 1 (got {MaxRunning}).");
        }
    }
}
