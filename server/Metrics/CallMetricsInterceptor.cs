using System.Diagnostics;
using AssocDB.Server.Hosting;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Prometheus;

namespace AssocDB.Server.Metrics;

/// <summary>Counts every unary, server-streaming and duplex-streaming call by method and final status
/// code, and times it (a stream until it ends); while it runs, it counts as in flight. Calls refused
/// before the interceptors run are counted by <see cref="UncountedCalls"/>.</summary>
internal sealed class CallMetricsInterceptor(ServerMetrics metrics) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse response = default!;
        await Measure(context, async () => response = await continuation(request, context));
        return response;
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        Measure(context, () => continuation(request, responseStream, context));

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        Measure(context, () => continuation(requestStream, responseStream, context));

    private async Task Measure(ServerCallContext context, Func<Task> call)
    {
        long start = Stopwatch.GetTimestamp();
        StatusCode code = StatusCode.Unknown;
        string method = CalledMethod.Of(context);
        UncountedCalls.MarkCounted(context.GetHttpContext());
        Gauge.Child inFlight = metrics.InFlight.WithLabels(method);
        inFlight.Inc();
        try
        {
            await call();
            code = StatusCode.OK;
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        finally
        {
            inFlight.Dec();
            metrics.Requests.WithLabels(method, code.ToString()).Inc();
            metrics.Latency.WithLabels(method).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }
}
