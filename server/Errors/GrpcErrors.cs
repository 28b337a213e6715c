using AssocDB.Engine.Model;
using AssocDB.Server.Jobs;
using Grpc.Core;

namespace AssocDB.Server.Errors;

/// <summary>
/// The one place where outcomes become gRPC statuses: every engine <see cref="ErrorCode"/>, the
/// server's own refusals (auth, recovery, limits), cancellation, and how a learning job failed. The field at fault travels in
/// the message (<c>field: message</c>) and in the <see cref="FieldTrailer"/> trailer.
/// </summary>
public static class GrpcErrors
{
    /// <summary>The trailer naming the request field at fault.</summary>
    public const string FieldTrailer = "assocdb-field";

    /// <summary>The status code of an engine error code.</summary>
    public static StatusCode ToStatusCode(ErrorCode code) => code switch
    {
        ErrorCode.NotFound => StatusCode.NotFound,
        ErrorCode.AlreadyExists => StatusCode.AlreadyExists,
        ErrorCode.InvalidArgument => StatusCode.InvalidArgument,
        ErrorCode.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorCode.ResourceExhausted => StatusCode.ResourceExhausted,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, "an engine error code without a status mapping"),
    };

    /// <summary>RESOURCE_EXHAUSTED for a reply over <c>Limits:MaxMessageBytes</c>, saying how large
    /// it would be and what to ask for instead.</summary>
    public static RpcException ReplyTooLarge(string method, long bytes, int limit) => ResourceExhausted("",
        $"the {method[(method.LastIndexOf('/') + 1)..]} reply would be {bytes:N0} bytes, over the server's Limits:MaxMessageBytes ({limit:N0}); ask for less (fewer queries, a smaller k or limit, a smaller page) or raise the limit");

    /// <summary>The exception that answers a call with an engine error.</summary>
    public static RpcException ToRpcException(EngineError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var trailers = new Metadata();
        if (error.Field.Length > 0)
        {
            trailers.Add(FieldTrailer, error.Field);
        }

        return new RpcException(new Status(ToStatusCode(error.Code), error.ToString()), trailers);
    }

    /// <summary>The value of a successful result, or the mapped error thrown.</summary>
    public static T Unwrap<T>(this Result<T> result) => result.IsOk ? result.Value : throw ToRpcException(result.Error!);

    /// <summary>A request field outside its allowed values.</summary>
    public static RpcException InvalidArgument(string field, string message) =>
        ToRpcException(new EngineError(ErrorCode.InvalidArgument, field, message));

    /// <summary>A request asking for more than a server limit allows.</summary>
    public static RpcException ResourceExhausted(string field, string message) =>
        ToRpcException(new EngineError(ErrorCode.ResourceExhausted, field, message));

    /// <summary>How a job that ended with an engine error failed: the status that error maps to.</summary>
    public static JobFailure JobFailed(EngineError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return new(ToStatusCode(error.Code), error.Field, error.ToString());
    }

    /// <summary>How a job that ended with a fault (an unexpected exception) failed: INTERNAL.</summary>
    public static JobFailure JobFault(Exception fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        return new(StatusCode.Internal, "", fault.Message);
    }

    /// <summary>A call without a valid API key.</summary>
    public static RpcException Unauthenticated(string message) => new(new Status(StatusCode.Unauthenticated, message));

    /// <summary>A call that arrived while the database is still opening (recovering from its log).</summary>
    public static RpcException Recovering() =>
        new(new Status(StatusCode.Unavailable, "the database is recovering; retry shortly"));

    /// <summary>A call that arrived while the server is shutting down.</summary>
    public static RpcException ShuttingDown() => new(new Status(StatusCode.Unavailable, "the server is shutting down"));

    /// <summary>An ingest stream ended because the server is shutting down. UNAVAILABLE, which
    /// clients take as transient: they resume from their last acknowledged batch once it is back.</summary>
    public static RpcException IngestShuttingDown() =>
        new(new Status(StatusCode.Unavailable, "the server is shutting down; resume the ingest from its last acknowledged batch"));

    /// <summary>An ingest stream ended because its client sent nothing for <paramref name="timeout"/>.
    /// UNAVAILABLE, which clients take as transient: one still there opens a new stream and resumes
    /// from its last acknowledged batch. (One that took no acknowledgement for as long is not sent
    /// this: the write waiting for it is cancelled, which resets the stream.)</summary>
    public static RpcException IngestIdle(TimeSpan timeout) =>
        new(new Status(StatusCode.Unavailable, $"the ingest stream waited {timeout} on its client, the server's limit (Limits:IngestIdleTimeout); open a new one and resume from the last acknowledged batch"));

    /// <summary>A call abandoned because its deadline passed or its client cancelled it.</summary>
    public static RpcException Cancelled(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Deadline <= DateTime.UtcNow
            ? new RpcException(new Status(StatusCode.DeadlineExceeded, "the deadline passed before the call completed"))
            : new RpcException(new Status(StatusCode.Cancelled, "the client cancelled the call"));
    }
}
