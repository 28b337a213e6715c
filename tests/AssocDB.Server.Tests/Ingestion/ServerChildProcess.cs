using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using AssocDB.Client;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// The server's built dll run with <c>dotnet</c> as a real child process on a fixed loopback port
/// and data folder, so a test can SIGKILL it and start it again at the same address. Disposing
/// kills it if it still runs; the caller owns the data folder.
/// </summary>
internal sealed class ServerChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringWriter _log = new();

    private ServerChildProcess(Process process, string address)
    {
        _process = process;
        Address = address;
    }

    public string Address { get; }

    /// <summary>What the server wrote to stderr, for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>A loopback port free right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the server and waits until it answers calls.</summary>
    public static async Task<ServerChildProcess> StartAsync(int port, string dataDirectory)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "AssocDB.Server.dll");
        var start = new ProcessStartInfo("dotnet", [dll, "--port", $"{port}", "--metrics-port", "-1", "--data", dataDirectory, "--device", "cpu"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the server process");
        var server = new ServerChildProcess(process, $"http://127.0.0.1:{port}");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (server._log)
            {
                server._log.WriteLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new AssocDbClient(server.Address);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await client.GetStatsAsync();
                return server;
            }
            catch (AssocDbException) when (attempt < 600 && !process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>SIGKILL: no shutdown, no checkpoint, no flush.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await KillAsync();
        }

        _process.Dispose();
    }
}
