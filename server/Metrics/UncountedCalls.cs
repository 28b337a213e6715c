using System.Diagnostics;
using AssocDB.Server.Hosting;
using Grpc.Core;
using Microsoft.AspNetCore.Http.Features;

namespace AssocDB.Server.Metrics;

/// <summary>
/// Counts the gRPC calls that end before <see cref="CallMetricsInterceptor"/> runs, by method and the
/// status the client got, and times them. grpc-dotnet reads a unary or server-streaming call's
/// request before it calls the interceptors, so a request over <c>Limits:MaxMessageBytes</c> was
/// refused with RESOURCE_EXHAUSTED and counted nowhere: a client sending too much never showed
/// among the failed calls.
/// </summary>
internal static class UncountedCalls
{
    private static readonly object CountedKey = new();

    /// <summary>Marks a call as counted by the interceptor, so that it is not counted twice.</summary>
    public static void MarkCounted(HttpContext context) => context.Items[CountedKey] = true;

    /// <summary>The middleware: runs the call, then counts it if it reached a gRPC method and the
    /// interceptor never saw it.</summary>
    public static async Task CountAsync(HttpContext context, RequestDelegate next, ServerMetrics metrics)
    {
        long start = Stopwatch.GetTimestamp();
        await next(context);
        if (context.Items.ContainsKey(CountedKey) || CalledMethod.Of(context) is not { } method)
        {
            return;
        }

        metrics.Requests.WithLabels(method, StatusOf(context).ToString()).Inc();
        metrics.Latency.WithLabels(method).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    /// <summary>The status the call was answered with: in the trailers, or in the headers of a
    /// trailers-only reply (grpc-dotnet's answer to a call refused before any message).</summary>
    private static StatusCode StatusOf(HttpContext context)
    {
        string? status = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers["grpc-status"].FirstOrDefault()
            ?? context.Response.Headers["grpc-status"].FirstOrDefault();
        return int.TryParse(status, out int code) ? (StatusCode)code : StatusCode.Unknown;
    }
}
