using Grpc.Core;

namespace AssocDB.Client;

/// <summary>
/// A call the server refused or could not complete: its gRPC status and, for bad input, the
/// request field at fault (e.g. <c>facts[2].tail</c>).
/// </summary>
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

    /// <summary>The gRPC status code.</summary>
    public StatusCode StatusCode { get; }

    /// <summary>The request field at fault; empty when none was named.</summary>
    public string Field { get; }
}
