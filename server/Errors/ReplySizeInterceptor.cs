using AssocDB.Server.Configuration;
using AssocDB.Server.Hosting;
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
/// item past it. Search is not sized here: its handler cuts its hits to the limit, sizing each hit
/// once, and refuses a reply that cannot be cut (a second sizing of up to the whole limit's bytes
/// would serve nothing).
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
    private const string Search = "/assocdb.v1.QueryService/Search";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = await continuation(request, context);
        int limit = options.Limits.MaxMessageBytes;
        if (CalledMethod.Of(context) is not (DefineRelation or Search) && response is IMessage message && message.CalculateSize() is int size && size > limit)
        {
            throw GrpcErrors.ReplyTooLarge(context.Method, size, limit);
        }

        return response;
    }
}
