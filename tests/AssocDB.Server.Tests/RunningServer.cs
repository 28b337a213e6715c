using System.Globalization;
using AssocDB.Client;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AssocDB.Server.Tests;

/// <summary>
/// A real server (the app's own builder, real Kestrel on 127.0.0.1 with a free port, a real engine
/// on a temp folder) and a real client channel to it. Disposing stops the server gracefully and
/// deletes the folder.
/// </summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly bool _ownsDirectory;

    private RunningServer(WebApplication app, string dataDirectory, bool ownsDirectory, string? apiKey)
    {
        App = app;
        DataDirectory = dataDirectory;
        _ownsDirectory = ownsDirectory;
        // Kestrel binds in the order the server listens: gRPC first, then metrics (when on).
        ICollection<string> addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        Address = addresses.First();
        MetricsAddress = addresses.Count > 1 ? addresses.Last() : null;
        Client = new AssocDbClient(new AssocDbClientOptions { Address = new Uri(Address), ApiKey = apiKey });
        Channel = GrpcChannel.ForAddress(Address);
    }

    public WebApplication App { get; }

    public string Address { get; }

    /// <summary>The HTTP/1.1 metrics endpoint, when the server was started with one.</summary>
    public string? MetricsAddress { get; }

    public string DataDirectory { get; }

    /// <summary>The wrapper client, with the server's API key when it has one.</summary>
    public AssocDbClient Client { get; }

    /// <summary>A bare channel, without any API key.</summary>
    public GrpcChannel Channel { get; }

    /// <summary>Starts a server on a free loopback port and waits until it is SERVING.</summary>
    public static async Task<RunningServer> StartAsync(
        string? apiKey = null, string? dataDirectory = null, Action<IServiceCollection>? services = null,
        bool waitServing = true, params string[] extraArgs)
    {
        bool owns = dataDirectory is null;
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        List<string> args = ["--port", "0", "--metrics-port", "-1", "--data", dataDirectory, "--device", "cpu", "--AssocDB:CheckpointInterval=00:10:00", .. extraArgs];
        if (apiKey is not null)
        {
            args.AddRange(["--api-key", apiKey]);
        }

        WebApplication app = AssocServer.Build([.. args], services);
        await app.StartAsync();
        var server = new RunningServer(app, dataDirectory, owns, apiKey);
        if (waitServing)
        {
            await server.WaitServingAsync();
        }

        return server;
    }

    public Task WaitServingAsync() => WaitServingAsync(Channel);

    /// <summary>The Prometheus text of the metrics endpoint (the server must have been started with
    /// <c>--metrics-port 0</c>).</summary>
    public async Task<string> ScrapeMetricsAsync()
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(new Uri(MetricsAddress ?? throw new InvalidOperationException("started without a metrics port")), "/metrics"));
    }

    /// <summary>The value of one series, named as the endpoint writes it (with its labels, if any);
    /// 0 while it has no sample, as Prometheus writes a labelled series only once it has one.</summary>
    public async Task<double> MetricAsync(string series)
    {
        string prefix = series + " ";
        string? line = (await ScrapeMetricsAsync()).Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line.AsSpan(prefix.Length), CultureInfo.InvariantCulture);
    }

    /// <summary>Polls gRPC health on <paramref name="channel"/> until the server says SERVING (it
    /// answers NOT_SERVING while the engine recovers).</summary>
    public static Task WaitServingAsync(GrpcChannel channel)
    {
        var health = new Health.HealthClient(channel);
        return Polling.UntilAsync(
            async () => (await health.CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving,
            "SERVING from the server's health check",
            TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Channel.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsDirectory && Directory.Exists(DataDirectory))
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
    }
}

/// <summary>One server shared by the tests of a class; each test uses its own collection.</summary>
public class ServerFixture : IAsyncLifetime
{
    private RunningServer? _server;

    /// <summary>The API key the server requires, if any.</summary>
    protected virtual string? ApiKey => null;

    /// <summary>Extra command-line arguments of the server.</summary>
    protected virtual string[] Args => [];

    /// <summary>Replaces services of the server after its defaults are registered, if set.</summary>
    protected virtual Action<IServiceCollection>? Services => null;

    public RunningServer Server => _server ?? throw new InvalidOperationException("not started");

    public AssocDbClient Client => Server.Client;

    public async Task InitializeAsync() => _server = await RunningServer.StartAsync(ApiKey, services: Services, extraArgs: Args);

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>A fresh collection name for one test.</summary>
    public static string NewCollection(string prefix) => $"{prefix}-{Guid.NewGuid():N}";
}
