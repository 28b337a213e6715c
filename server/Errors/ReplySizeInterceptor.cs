using AssocDB.Server.Configuration;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace AssocDB.Server.Errors;

/// <summary>
/// Refuses a unary reply larger than the server sends (<c>Limits:MaxMessageBytes</c>) with
/// RESOURCE_EXHAUSTED saying how large it would be and what to ask for instead. Without it
/// grpc-dotnet failed such a call while sending, after the work, with "Sending message exceeds the
/// maximum configured message size" (which reads as if the request were too large), and the
/// call counted as OK in the metrics. Every count limit (queries × k, a page of edges with large
/// payloads, a relation's learned rules) admits replies past the byte limit.
/// </summary>
internal sealed class ReplySizeInterceptor(AssocServerOptions options) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = await continuation(request, context);
        int limit = options.Limits.MaxMessageBytes;
        if (response is IMessage message && message.CalculateSize() is int size && size > limit)
        {
            string method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            throw GrpcErrors.ResourceExhausted("", $"the {method} reply would be {size:N0} bytes, over the server's Limits:MaxMessageBytes ({limit:N0}); ask for less (fewer queries, a smaller k or limit, a smaller page) or raise the limit");
        }

        return response;
    }
}
