using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace AssocDB.Server.Metrics;

/// <summary>Counts every unary and duplex-streaming call by method and final status code, and times it.</summary>
internal sealed class CallMetricsInterceptor(ServerMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        long start = Stopwatch.GetTimestamp();
        StatusCode code = StatusCode.Unknown;
        try
        {
            TResponse response = await continuation(request, context);
            code = StatusCode.OK;
            return response;
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        finally
        {
            metrics.Requests.WithLabels(context.Method, code.ToString()).Inc();
            metrics.Latency.WithLabels(context.Method).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        long start = Stopwatch.GetTimestamp();
        StatusCode code = StatusCode.Unknown;
        try
        {
            await continuation(requestStream, responseStream, context);
            code = StatusCode.OK;
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        finally
        {
            metrics.Requests.WithLabels(context.Method, code.ToString()).Inc();
            metrics.Latency.WithLabels(context.Method).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }
}
