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
/// payloads, a relation's learned rules) admits replies past the byte limit; listings cut their
/// pages to the limit (<see cref="Mapping.ReplyBudget"/>), so what is refused here is a single
/// item past it, or a search's queries × k.
/// </summary>
/// <remarks>
/// A write is exempt where its reply echoes state the write did not bound: DefineRelation answers
/// with the whole relation, learned properties included, which can pass the limit although the
/// request was within it. The write is done and durable by then, so refusing the reply would report
/// a change that happened as failed; the reply is sent instead (its service has no send limit).
/// </remarks>
internal sealed class ReplySizeInterceptor(AssocServerOptions options) : Interceptor
{
    private const string DefineRelation = "/assocdb.v1.RelationService/DefineRelation";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = await continuation(request, context);
        int limit = options.Limits.MaxMessageBytes;
        if (context.Method != DefineRelation && response is IMessage message && message.CalculateSize() is int size && size > limit)
        {
            string method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            throw GrpcErrors.ResourceExhausted("", $"the {method} reply would be {size:N0} bytes, over the server's Limits:MaxMessageBytes ({limit:N0}); ask for less (fewer queries, a smaller k or limit, a smaller page) or raise the limit");
        }

        return response;
    }
}
