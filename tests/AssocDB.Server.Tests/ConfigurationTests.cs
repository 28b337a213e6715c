using System.Globalization;
using System.Net;
using System.Net.Sockets;
using AssocDB.Server.Configuration;
using AssocDB.Server.Tests.Ingestion;

namespace AssocDB.Server.Tests;

/// <summary>Settings, from the command line or the environment, are checked before anything listens,
/// and each problem is a sentence naming the setting; in particular the server refuses to expose
/// itself without a key unless told --insecure.</summary>
public sealed class ConfigurationTests
{
    [Fact]
    public void Non_loopback_address_without_a_key_is_refused()
    {
        var e = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--host", "0.0.0.0", "--metrics-port", "-1"]));
        Assert.Contains(e.Problems, p => p.Contains("--insecure", StringComparison.Ordinal) && p.Contains("0.0.0.0", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--insecure")]
    [InlineData("--api-key=k")]
    public async Task Non_loopback_address_is_accepted_with_a_key_or_insecure(string flag)
    {
        await using var app = AssocServer.Build(["--host", "0.0.0.0", "--metrics-port", "-1", flag]);
        Assert.NotNull(app);
    }

    // Kestrel binds any host name but localhost to every interface; System.Uri calls 'loopback' a
    // loopback name, and it let such an endpoint through.
    [Theory]
    [InlineData("https://*:5001")]
    [InlineData("http://loopback:5001")]
    [InlineData("http://myhost.example:5001")]
    public void Kestrel_endpoint_on_a_public_address_without_a_key_is_refused(string url)
    {
        var e = Assert.Throws<ServerConfigurationException>(() =>
            AssocServer.Build([$"--Kestrel:Endpoints:Grpc:Url={url}", "--metrics-port", "-1"]));
        Assert.Contains(url, Assert.Single(e.Problems), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kestrel_endpoint_on_loopback_needs_no_key()
    {
        await using var app = AssocServer.Build(["--Kestrel:Endpoints:Grpc:Url=http://LocalHost:5001", "--Kestrel:Endpoints:V6:Url=http://[::1]:5002", "--metrics-port", "-1"]);
        Assert.NotNull(app);
    }

    // With Kestrel:Endpoints, Host still places the metrics port: it used to go unchecked, so the
    // metrics listened on 0.0.0.0 without a key, and a host name crashed the start.
    [Fact]
    public void Host_is_checked_when_it_places_only_the_metrics_port()
    {
        var exposed = Assert.Throws<ServerConfigurationException>(() =>
            AssocServer.Build(["--host", "0.0.0.0", "--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:5001", "--metrics-port", "0"]));
        Assert.Contains("0.0.0.0", Assert.Single(exposed.Problems), StringComparison.Ordinal);

        var unparsed = Assert.Throws<ServerConfigurationException>(() =>
            AssocServer.Build(["--host", "myhost.example", "--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:5001", "--metrics-port", "0"]));
        Assert.StartsWith("AssocDB:Host", Assert.Single(unparsed.Problems), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Port_in_use_ends_the_start_with_exit_code_1()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        string port = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        string data = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(1, await AssocServer.RunAsync(["--port", port, "--metrics-port", "-1", "--data", data, "--device", "cpu"]).WaitAsync(TimeSpan.FromMinutes(1)));
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    [Fact]
    public void Api_key_that_no_header_can_carry_is_refused()
    {
        var e = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--api-key", "cl\u00e9", "--metrics-port", "-1"]));
        Assert.StartsWith("AssocDB:ApiKey must be printable ASCII", Assert.Single(e.Problems), StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_values_and_unknown_settings_are_reported_by_name()
    {
        var bad = Assert.Throws<ServerConfigurationException>(() =>
            AssocServer.Build(["--port", "70000", "--device", "gpu", "--AssocDB:Limits:MaxK=0", "--AssocDB:SearchBatching:MaxBatch=0", "--AssocDB:SearchBatching:ReturnWaitMicroseconds=-1", "--AssocDB:Jobs:MaxFinished=0", "--AssocDB:Jobs:MaxRunning=0", "--AssocDB:Limits:MaxCollections=0", "--AssocDB:Limits:MaxIngestStreams=0", "--AssocDB:Limits:IngestIdleTimeout=00:00:00"]));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Port", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Device", StringComparison.Ordinal) && p.Contains("'gpu'", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Jobs:MaxFinished", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Jobs:MaxRunning", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Limits:MaxCollections", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Limits:MaxIngestStreams", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Limits:IngestIdleTimeout", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Limits:MaxK", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:SearchBatching:MaxBatch", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:SearchBatching:ReturnWaitMicroseconds", StringComparison.Ordinal));

        // Limits above the engine's own, and checkpoint intervals PeriodicTimer refuses (periodic
        // checkpoints would silently never run).
        var beyond = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(
            ["--AssocDB:Limits:MaxK=20000", "--AssocDB:Limits:MaxDimension=5000", "--AssocDB:Limits:MaxDepth=17", "--AssocDB:Limits:MaxResults=100001", "--AssocDB:CheckpointInterval=60.00:00:00"]));
        Assert.Equal(
            ["AssocDB:CheckpointInterval", "AssocDB:Limits:MaxDepth", "AssocDB:Limits:MaxDimension", "AssocDB:Limits:MaxK", "AssocDB:Limits:MaxResults"],
            beyond.Problems.Select(p => p[..p.IndexOf(' ', StringComparison.Ordinal)]).Order(StringComparer.Ordinal));
        Assert.Single(Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--AssocDB:CheckpointInterval=00:00:00.0001"])).Problems);
        Assert.StartsWith("AssocDB:MinFreeDiskBytes", Assert.Single(Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--AssocDB:MinFreeDiskBytes=-1"])).Problems), StringComparison.Ordinal);
        // FASTER rounded a size that is not a power of two down without a word.
        Assert.StartsWith("AssocDB:StateIndexBytes", Assert.Single(Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--AssocDB:StateIndexBytes=100000"])).Problems), StringComparison.Ordinal);
        // A key no client could present (header values arrive trimmed).
        Assert.StartsWith("AssocDB:ApiKey", Assert.Single(Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--api-key", " key "])).Problems), StringComparison.Ordinal);

        var unknown = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--AssocDB:Prot=1"]));
        Assert.Contains("Prot", Assert.Single(unknown.Problems), StringComparison.Ordinal);

        // A mistyped switch used to be ignored, and the server started with the defaults.
        foreach (string[] stray in new[] { ["--prot", "5"], new[] { "--data-dir=/tmp/x" }, new[] { "data" } })
        {
            Assert.Contains("see --help", Assert.Single(Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(stray)).Problems), StringComparison.Ordinal);
        }
        var notANumber = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--port", "many"]));
        Assert.Contains("Port", Assert.Single(notANumber.Problems), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("banana")]
    [InlineData("cuda:99")]
    public void Device_that_is_unknown_or_missing_here_is_refused_at_start(string device)
    {
        // No machine this runs on has a hundred CUDA devices, and one without CUDA has none at all:
        // either way the server must refuse before it listens, not fail later opening the engine.
        var e = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--device", device, "--metrics-port", "-1"]));
        string problem = Assert.Single(e.Problems);
        Assert.StartsWith("AssocDB:Device", problem, StringComparison.Ordinal);
        Assert.Contains($"'{device}'", problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Environment_settings_are_checked_and_the_command_line_overrides_them()
    {
        // A child process, since environment variables are shared by every test in this one.
        (int exitCode, string error, _) = await ServerChildProcess.RunToExitAsync(
            ["--AssocDB:Limits:MaxK=5"],
            new Dictionary<string, string> { ["ASSOCDB__Limits__MaxK"] = "0", ["ASSOCDB__Limits__MaxDepth"] = "-1" });
        Assert.Equal(2, exitCode);
        Assert.Contains("AssocDB:Limits:MaxDepth must be 0..16, the engine's limit (got -1)", error, StringComparison.Ordinal);
        Assert.DoesNotContain("MaxK", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Short_switches_become_configuration_keys()
    {
        Assert.Equal(
            ["--AssocDB:Port=1", "--AssocDB:DataDirectory=/d", "--AssocDB:Insecure=true", "--AssocDB:ApiKey=k", "--Kestrel:X=y"],
            ServerCommandLine.Normalize(["--port", "1", "--data=/d", "--insecure", "--api-key", "k", "--Kestrel:X=y"]));
        Assert.Throws<ServerConfigurationException>(() => ServerCommandLine.Normalize(["--port"]));
        // A separate boolean is the flag's value; it used to be dropped, turning insecure mode on.
        Assert.Equal(["--AssocDB:Insecure=false", "--AssocDB:Port=1"], ServerCommandLine.Normalize(["--insecure", "false", "--port", "1"]));
        Assert.Equal(["--AssocDB:Insecure=true", "--AssocDB:Port=1"], ServerCommandLine.Normalize(["--insecure", "--port", "1"]));
        Assert.Equal(["--AssocDB:Limits:MaxK", "5", "--AssocDB:Port=1"], ServerCommandLine.Normalize(["--AssocDB:Limits:MaxK", "5", "--port", "1"]));
        Assert.Throws<ServerConfigurationException>(() => ServerCommandLine.Normalize(["--AssocDB:Limits:MaxK"]));
        Assert.False(ServerCommandLine.AsksForHelp(["--api-key", "-h"]));
        Assert.True(ServerCommandLine.AsksForHelp(["--port", "1", "-h"]));
    }

    // --help used to start a server on the defaults (and create ./data).
    [Fact]
    public async Task Help_prints_the_usage_and_starts_nothing()
    {
        var output = new StringWriter();
        TextWriter console = Console.Out;
        Console.SetOut(output);
        try
        {
            Assert.Equal(0, await AssocServer.RunAsync(["--help"]).WaitAsync(TimeSpan.FromMinutes(1)));
        }
        finally
        {
            Console.SetOut(console);
        }

        Assert.Contains("--port N", output.ToString(), StringComparison.Ordinal);
        Assert.Contains("--AssocDB:Section:Key=value", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_collection_limit_reaches_the_engine()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxCollections=1"]);
        await server.Client.CreateCollectionAsync("first", 4);
        var refused = await Assert.ThrowsAsync<AssocDB.Client.AssocDbException>(() => server.Client.CreateCollectionAsync("second", 4));
        Assert.Equal((Grpc.Core.StatusCode.ResourceExhausted, "name"), (refused.StatusCode, refused.Field));
    }

    [Fact]
    public async Task The_state_index_size_reaches_the_store()
    {
        // Each checkpoint writes the state store's whole hash index (FASTER's ht.dat.0), and a
        // little more (1 KiB here), so its size tells the index's.
        const long IndexBytes = 1L << 16;
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: [$"--AssocDB:StateIndexBytes={IndexBytes}"]);
        await server.Client.CreateCollectionAsync("indexed", 4);
        await server.Client.AddFactAsync("indexed", "a", "r", "b");
        await server.Client.CheckpointAsync("indexed");
        string[] indexes = Directory.GetFiles(server.DataDirectory, "ht.dat.*", SearchOption.AllDirectories);
        Assert.NotEmpty(indexes);
        Assert.All(indexes, index => Assert.InRange(new FileInfo(index).Length, IndexBytes, 2 * IndexBytes - 1));
    }

    [Fact]
    public void Defaults_listen_on_loopback_50051_with_data_in_the_working_folder()
    {
        var options = new AssocServerOptions();
        Assert.Equal(("127.0.0.1", 50051, "./data", "auto"), (options.Host, options.Port, options.DataDirectory, options.Device));
        Assert.Empty(options.Validate([]));
    }
}
