using System.Globalization;
using AssocDB.Engine;
using AssocDB.Server;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AssocDB.GrpcBench;

/// <summary>
/// The real server (the app's own builder, Kestrel on 127.0.0.1 with free ports) hosted in this
/// process over an existing data folder, as the server tests host it. Disposing stops it gracefully.
/// </summary>
internal sealed class HostedServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _metrics = new();

    private HostedServer(WebApplication app)
    {
        _app = app;
        // Kestrel binds in the order the server listens: gRPC first, then metrics.
        ICollection<string> addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        Address = new Uri(addresses.First());
        MetricsUri = new Uri(new Uri(addresses.Last()), "/metrics");
    }

    /// <summary>The gRPC endpoint (HTTP/2 without TLS).</summary>
    public Uri Address { get; }

    private Uri MetricsUri { get; }

    /// <summary>The server's own open collection, for searching it in-process beside the gRPC load.</summary>
    public Collection Collection(string name) => AssocServer.Database(_app).GetCollection(name).Value;

    /// <summary>Starts a server on <paramref name="dataDirectory"/> and waits until it has recovered
    /// the data and reports SERVING.</summary>
    public static async Task<HostedServer> StartAsync(string dataDirectory, bool batching, IReadOnlyList<string> serverOptions)
    {
        string[] args =
        [
            "--port", "0", "--metrics-port", "0", "--data", dataDirectory, "--device", "cpu",
            .. serverOptions.Select(option => "--AssocDB:" + option),
            // After the options, so that the run labelled with batching off has it off.
            "--AssocDB:SearchBatching:Enabled=" + (batching ? "true" : "false"),
            "--Logging:LogLevel:Default=Warning",
            // The health check logs every NOT_SERVING answer while the server recovers as an error.
            "--Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks=Critical",
        ];
        WebApplication app = AssocServer.Build(args);
        await app.StartAsync();
        var server = new HostedServer(app);
        try
        {
            await server.WaitServingAsync();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>The server's search batch histogram: engine searches run and queries they answered.</summary>
    public async Task<(double Searches, double Queries)> SearchBatchCountersAsync()
    {
        string text = await _metrics.GetStringAsync(MetricsUri);
        double Value(string name) => text.Split('\n')
            .Where(line => line.StartsWith(name + " ", StringComparison.Ordinal))
            .Select(line => double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture))
            .FirstOrDefault();
        return (Value("assocdb_search_batch_queries_count"), Value("assocdb_search_batch_queries_sum"));
    }

    public async ValueTask DisposeAsync()
    {
        _metrics.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task WaitServingAsync()
    {
        using var channel = GrpcChannel.ForAddress(Address);
        var health = new Health.HealthClient(channel);
        // Recovery of the bench's collection takes seconds; two minutes means something is wrong.
        for (int attempt = 0; attempt < 1200; attempt++)
        {
            HealthCheckResponse response = await health.CheckAsync(new HealthCheckRequest());
            if (response.Status == HealthCheckResponse.Types.ServingStatus.Serving)
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the server did not become SERVING within 2 minutes");
    }
}
