using System.Diagnostics;

namespace AssocDB.Server.Tests;

/// <summary>
/// The proto is a contract for every language: a Python client whose stubs are generated from it
/// at test time (Debian's python3-grpcio and python3-protobuf, with protoc from protobuf-compiler
/// and grpc_python_plugin from protobuf-compiler-grpc) runs the family example and a search against
/// the real server.
/// </summary>
public sealed class IndependentClientTests
{
    private const string Python = "/usr/bin/python3";

    [PythonGrpcFact]
    public async Task Python_client_generated_from_the_proto_runs_the_family_example()
    {
        const string key = "python-key";
        await using RunningServer server = await RunningServer.StartAsync(apiKey: key);
        string script = Path.Combine(AppContext.BaseDirectory, "python", "independent_client.py");
        string target = new Uri(server.Address).Authority;
        (int exitCode, string output) = await RunAsync(Python, script, Path.Combine(RepositoryFiles.Root, "proto"), target, "--api-key", key, "--checks", "family");
        Assert.True(exitCode == 0, output);
        Assert.Contains("all checks passed", output, StringComparison.Ordinal);
    }

    [PythonGrpcFact]
    public async Task Python_client_generated_from_the_proto_searches()
    {
        await using RunningServer server = await RunningServer.StartAsync();
        string script = Path.Combine(AppContext.BaseDirectory, "python", "independent_client.py");
        (int exitCode, string output) = await RunAsync(Python, script, Path.Combine(RepositoryFiles.Root, "proto"), new Uri(server.Address).Authority, "--checks", "search");
        Assert.True(exitCode == 0, output);
    }

    /// <summary>Runs the tests only where Debian's python can import grpc and the code generators exist.</summary>
    private sealed class PythonGrpcFactAttribute : FactAttribute
    {
        public PythonGrpcFactAttribute()
        {
            if (!CanImportGrpc())
            {
                Skip = $"{Python} cannot import grpc or protoc/grpc_python_plugin are missing: "
                    + "apt-get install -y python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc";
            }
        }

        private static bool CanImportGrpc()
        {
            try
            {
                const string probe = "import grpc, google.protobuf, shutil, sys; "
                    + "sys.exit(0 if shutil.which('protoc') and shutil.which('grpc_python_plugin') else 1)";
                return RunAsync(Python, "-c", probe).GetAwaiter().GetResult().ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return false; // no python at that path
            }
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        args.ToList().ForEach(start.ArgumentList.Add);
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
