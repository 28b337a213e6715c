using Grpc.Core;
using Grpc.Core.Interceptors;

namespace AssocDB.Server.Errors;

/// <summary>
/// Answers a call abandoned through its cancellation token (deadline or client cancel) with
/// DEADLINE_EXCEEDED or CANCELLED, and one that ran out of disk (a collection's folder or manifest
/// written outside the engine's logged writes) with RESOURCE_EXHAUSTED, instead of UNKNOWN. Engine
/// errors never arrive here as exceptions: handlers map them with <see cref="GrpcErrors.Unwrap"/>.
/// </summary>
internal sealed class ErrorInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception exception) when (Translate(exception, context) is { } status)
        {
            throw status;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception exception) when (Translate(exception, context) is { } status)
        {
            throw status;
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (Exception exception) when (Translate(exception, context) is { } status)
        {
            throw status;
        }
    }

    /// <summary>errno ENOSPC (Linux, macOS) and ERROR_DISK_FULL (Windows), as .NET reports them.</summary>
    private static readonly int[] DiskFull = [28, unchecked((int)0x80070070)];

    private static RpcException? Translate(Exception exception, ServerCallContext context) => exception switch
    {
        OperationCanceledException when context.CancellationToken.IsCancellationRequested => GrpcErrors.Cancelled(context),
        IOException when DiskFull.Contains(exception.HResult) => GrpcErrors.ResourceExhausted("", $"the server's disk is full ({exception.Message})"),
        _ => null,
    };
}
