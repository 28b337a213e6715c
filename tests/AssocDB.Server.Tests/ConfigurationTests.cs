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

    [Fact]
    public void Kestrel_endpoint_on_a_public_address_without_a_key_is_refused()
    {
        var e = Assert.Throws<ServerConfigurationException>(() =>
            AssocServer.Build(["--Kestrel:Endpoints:Grpc:Url=https://*:5001", "--metrics-port", "-1"]));
        Assert.Single(e.Problems);
    }

    [Fact]
    public void Bad_values_and_unknown_settings_are_reported_by_name()
    {
        var bad = Assert.Throws<ServerConfigurationException>(() =>
            AssocServer.Build(["--port", "70000", "--device", "gpu", "--AssocDB:Limits:MaxK=0", "--AssocDB:SearchBatching:MaxBatch=0", "--AssocDB:SearchBatching:ReturnWaitMicroseconds=-1", "--AssocDB:Jobs:MaxFinished=0"]));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Port", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Device", StringComparison.Ordinal) && p.Contains("'gpu'", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("AssocDB:Jobs:MaxFinished", StringComparison.Ordinal));
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
        // A key no client could present (header values arrive trimmed).
        Assert.StartsWith("AssocDB:ApiKey", Assert.Single(Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--api-key", " key "])).Problems), StringComparison.Ordinal);

        var unknown = Assert.Throws<ServerConfigurationException>(() => AssocServer.Build(["--AssocDB:Prot=1"]));
        Assert.Contains("Prot", Assert.Single(unknown.Problems), StringComparison.Ordinal);
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
        (int exitCode, string error) = await ServerChildProcess.RunToExitAsync(
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
    }

    [Fact]
    public void Defaults_listen_on_loopback_50051_with_data_in_the_working_folder()
    {
        var options = new AssocServerOptions();
        Assert.Equal(("127.0.0.1", 50051, "./data", "auto"), (options.Host, options.Port, options.DataDirectory, options.Device));
        Assert.Empty(options.Validate([]));
    }
}
