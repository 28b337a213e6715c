using Grpc.AspNetCore.Server;
using Grpc.Core;

namespace AssocDB.Server.Hosting;

/// <summary>
/// The name of the method a call was routed to. <see cref="ServerCallContext.Method"/> is the
/// request's path as sent, which routing matches ignoring case and a trailing slash: as a metrics
/// label it let any client, even one the key check then refused, add series without bound (one per
/// spelling of every method), and the health service was open in one spelling only.
/// </summary>
internal static class CalledMethod
{
    public static string Of(ServerCallContext context) => Of(context.GetHttpContext()) ?? "unrouted";

    /// <summary>The gRPC method a request was routed to; null when it reached none.</summary>
    public static string? Of(HttpContext context) => context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.FullName;
}
