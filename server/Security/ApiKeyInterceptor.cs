using System.Security.Cryptography;
using System.Text;
using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace AssocDB.Server.Security;

/// <summary>
/// Requires <c>authorization: Bearer &lt;key&gt;</c> on every call when an API key is configured.
/// Keys are compared as SHA-256 digests with <see cref="CryptographicOperations.FixedTimeEquals"/>,
/// so neither the content nor the length of the configured key leaks through timing. The gRPC
/// health service stays open, so that probes need no secret.
/// </summary>
internal sealed class ApiKeyInterceptor(AssocServerOptions options) : Interceptor
{
    private const string HealthServicePrefix = "/grpc.health.v1.Health/";
    private const string Scheme = "Bearer ";

    private readonly byte[]? _expectedDigest =
        string.IsNullOrEmpty(options.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

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
        if (_expectedDigest is null || context.Method.StartsWith(HealthServicePrefix, StringComparison.Ordinal))
        {
            return;
        }

        string? header = context.RequestHeaders.GetValue("authorization");
        if (header is null)
        {
            throw GrpcErrors.Unauthenticated("missing 'authorization: Bearer <api key>' header");
        }

        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw GrpcErrors.Unauthenticated("the authorization header must use the Bearer scheme");
        }

        byte[] presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()));
        if (!CryptographicOperations.FixedTimeEquals(presented, _expectedDigest))
        {
            throw GrpcErrors.Unauthenticated("invalid API key");
        }
    }
}
