using System.Globalization;
using System.Text;
using AssocDB.Server.Hosting;
using Grpc.Core;

namespace AssocDB.Server.Security;

/// <summary>
/// Requires <c>authorization: Bearer &lt;key&gt;</c> on every gRPC call and on the metrics when an
/// API key is configured (see <see cref="ApiKey"/>). The gRPC health service stays open, so that
/// probes need no secret.
/// </summary>
/// <remarks>
/// A middleware, not a gRPC interceptor: grpc-dotnet reads and parses a unary or server-streaming
/// call's request before any interceptor runs, so a caller without the key could make the server
/// read and parse up to <c>Limits:MaxMessageBytes</c> per call before it was refused. Here the call
/// is refused from its headers, its body unread.
/// </remarks>
internal static class ApiKeyGate
{
    private const string HealthServicePrefix = "/grpc.health.v1.Health/";

    /// <summary>Adds the check to <paramref name="app"/>'s pipeline (after routing, which names the
    /// method called), when a key is configured.</summary>
    public static void Use(IApplicationBuilder app, ApiKey apiKey)
    {
        if (!apiKey.Required)
        {
            return;
        }

        app.Use(async (context, next) =>
        {
            string? method = CalledMethod.Of(context);
            bool guarded = method is null
                ? context.Request.Path.StartsWithSegments("/metrics")
                : !method.StartsWith(HealthServicePrefix, StringComparison.Ordinal);
            if (guarded && apiKey.Refusal(context.Request.Headers.Authorization.FirstOrDefault()) is string refusal)
            {
                await (method is null ? RefuseHttpAsync(context.Response, refusal) : RefuseCallAsync(context.Response, refusal));
                return;
            }

            await next(context);
        });
    }

    /// <summary>A metrics scrape without the key: 401 with the reason.</summary>
    private static Task RefuseHttpAsync(HttpResponse response, string refusal)
    {
        response.StatusCode = StatusCodes.Status401Unauthorized;
        response.Headers.WWWAuthenticate = "Bearer";
        return response.WriteAsync(refusal);
    }

    /// <summary>A gRPC call without the key: UNAUTHENTICATED as a trailers-only reply (the status in
    /// the reply's headers and no message), as grpc-dotnet answers a call it refuses before reading.</summary>
    private static Task RefuseCallAsync(HttpResponse response, string refusal)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)StatusCode.Unauthenticated).ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = PercentEncoded(refusal);
        return response.CompleteAsync();
    }

    /// <summary>A status message as gRPC sends it: UTF-8, with every byte outside printable ASCII,
    /// and '%', written as %XX.</summary>
    private static string PercentEncoded(string message)
    {
        var encoded = new StringBuilder(message.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(message))
        {
            if (b is >= 0x20 and <= 0x7E and not (byte)'%')
            {
                encoded.Append((char)b);
            }
            else
            {
                encoded.Append(CultureInfo.InvariantCulture, $"%{b:X2}");
            }
        }

        return encoded.ToString();
    }
}
