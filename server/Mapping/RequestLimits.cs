using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;

namespace AssocDB.Server.Mapping;

/// <summary>
/// Checks a request against the server's <see cref="LimitOptions"/> before the engine sees it, and
/// fills in the documented defaults of unset optional fields. What the engine itself validates
/// (names, vector lengths, finiteness) is left to it.
/// </summary>
internal sealed class RequestLimits(AssocServerOptions options)
{
    private readonly LimitOptions _limits = options.Limits;
    private int _ingestStreams;

    /// <summary>Admits one more ingest stream, up to MaxIngestStreams at once (each holds up to a
    /// message of batch in the engine, so they bound the memory ingestion takes); disposing the
    /// returned lease when the stream ends makes room for another.</summary>
    public IDisposable IngestStream()
    {
        if (Interlocked.Increment(ref _ingestStreams) > _limits.MaxIngestStreams)
        {
            Interlocked.Decrement(ref _ingestStreams);
            // The client library knows this refusal by "(Limits:MaxIngestStreams)" and retries it
            // after a broken stream, which the server may still be counting.
            throw GrpcErrors.ResourceExhausted("", $"{_limits.MaxIngestStreams} ingest streams are open, the server's limit (Limits:MaxIngestStreams); retry when one has ended");
        }

        return new StreamLease(() => Interlocked.Decrement(ref _ingestStreams));
    }

    /// <summary>A batch of 1..MaxBatch items.</summary>
    public void Batch(int count, string field)
    {
        if (count == 0)
        {
            throw GrpcErrors.InvalidArgument(field, "must hold at least one item");
        }

        BatchAtMost(count, field);
    }

    /// <summary>At most MaxBatch items (none is allowed here).</summary>
    public void BatchAtMost(int count, string field) => ListAtMost(count, null, field);

    /// <summary>At most the items <paramref name="limit"/> gives for the server's limits, or MaxBatch
    /// when it is null (none is allowed here).</summary>
    public void ListAtMost(int count, Func<LimitOptions, int>? limit, string field)
    {
        int most = limit?.Invoke(_limits) ?? _limits.MaxBatch;
        if (count > most)
        {
            throw GrpcErrors.ResourceExhausted(field, $"holds {count} items; the limit is {most} per call");
        }
    }

    /// <summary>k in 1..MaxK, or the default when unset.</summary>
    public int K(bool isSet, int k, int defaultK, string field = "k")
    {
        if (!isSet)
        {
            return Math.Min(defaultK, _limits.MaxK);
        }

        return k >= 1 && k <= _limits.MaxK ? k : throw GrpcErrors.InvalidArgument(field, $"must be 1..{_limits.MaxK} (got {k})");
    }

    /// <summary>A proof depth in 0..MaxDepth, or the default (capped at the limit) when unset.</summary>
    public int Depth(bool isSet, int depth, string field = "max_depth")
    {
        if (!isSet)
        {
            return Math.Min(Engine.Model.RelatedOptions.Default.MaxDepth, _limits.MaxDepth);
        }

        return depth >= 0 && depth <= _limits.MaxDepth ? depth : throw GrpcErrors.InvalidArgument(field, $"must be 0..{_limits.MaxDepth} (got {depth})");
    }

    /// <summary>A result count in 1..MaxResults, or the default (capped at the limit) when unset.</summary>
    public int Results(bool isSet, int limit, string field = "limit")
    {
        if (!isSet)
        {
            return Math.Min(Engine.Model.RelatedOptions.Default.Limit, _limits.MaxResults);
        }

        return limit >= 1 && limit <= _limits.MaxResults ? limit : throw GrpcErrors.InvalidArgument(field, $"must be 1..{_limits.MaxResults} (got {limit})");
    }

    /// <summary>A new collection's dimension in 1..MaxDimension.</summary>
    public void Dimension(int dimension, string field = "dimension")
    {
        if (dimension < 1 || dimension > _limits.MaxDimension)
        {
            throw GrpcErrors.InvalidArgument(field, $"must be 1..{_limits.MaxDimension} (got {dimension})");
        }
    }

    /// <summary>The limits of the server whose call is being read, for a marshaller: one is shared
    /// by every server in the process and is given no services, so they come from the call's
    /// HttpContext (kept for the request's flow by the registered <see cref="IHttpContextAccessor"/>).</summary>
    public static RequestLimits? OfCurrentCall() => CallContext.HttpContext?.RequestServices.GetService<RequestLimits>();

    /// <summary>Reads the current call's HttpContext (its state is static, so one serves all).</summary>
    private static readonly HttpContextAccessor CallContext = new();

    private sealed class StreamLease(Action release) : IDisposable
    {
        public void Dispose() => release();
    }
}
