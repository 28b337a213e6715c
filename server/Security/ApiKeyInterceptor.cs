using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace AssocDB.Server.Security;

/// <summary>
/// Requires <c>authorization: Bearer &lt;key&gt;</c> on every call when an API key is configured
/// (see <see cref="ApiKey"/>). The gRPC health service stays open, so that probes need no secret.
/// </summary>
internal sealed class ApiKeyInterceptor(ApiKey apiKey) : Interceptor
{
    private const string HealthServicePrefix = "/grpc.health.v1.Health/";
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authorize(ServerCallContext context)
    {
        if (!apiKey.Required || CalledMethod.Of(context).StartsWith(HealthServicePrefix, StringComparison.Ordinal))
        {
            return;
        }

        if (apiKey.Refusal(context.RequestHeaders.GetValue("authorization")) is string refusal)
        {
            throw GrpcErrors.Unauthenticated(refusal);
        }
    }
}
