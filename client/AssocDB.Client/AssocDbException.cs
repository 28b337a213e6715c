using Grpc.Core;

namespace AssocDB.Client;

/// <summary>
/// A call the server refused or could not complete, or that did not finish within the client's
/// <see cref="AssocDbClientOptions.Timeout"/> (<see cref="StatusCode.DeadlineExceeded"/>): its gRPC
/// status and, for bad input, the request field at fault (e.g. <c>facts[2].tail</c>).
/// </summary>
/// <remarks>
/// A write that ends <see cref="StatusCode.DeadlineExceeded"/>, <see cref="StatusCode.Cancelled"/>
/// or <see cref="StatusCode.Unavailable"/> may have been applied all the same (the server may have
/// committed the batch before the answer was lost): its outcome is unknown until read back.
/// </remarks>
public sealed class AssocDbException : Exception
{
    /// <summary>The trailer in which the server names the request field at fault.</summary>
    public const string FieldTrailer = "assocdb-field";

    /// <summary>Wraps a failed call.</summary>
    public AssocDbException(RpcException inner)
        : base(inner?.Status.Detail, inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        StatusCode = inner.StatusCode;
        Field = inner.Trailers.GetValue(FieldTrailer) ?? "";
    }

    /// <summary>A call that failed on the client's side, with no status from the server.</summary>
    internal AssocDbException(StatusCode statusCode, string message, Exception inner)
        : base(message, inner)
    {
        StatusCode = statusCode;
        Field = "";
    }

    /// <summary>The gRPC status code.</summary>
    public StatusCode StatusCode { get; }

    /// <summary>The request field at fault; empty when none was named.</summary>
    public string Field { get; }
}
