using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using AssocDB.Client;

namespace AssocDB.IngestBench;

/// <summary>The real server as a child process (<c>dotnet AssocDB.Server.dll</c>) on a free loopback
/// port and its own data folder, so its resident memory is its own.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, string address)
    {
        _process = process;
        Address = address;
    }

    public string Address { get; }

    /// <summary>Peak resident memory so far (VmHWM), in bytes.</summary>
    public long PeakResidentBytes => ReadStatus("VmHWM:");

    /// <summary>CPU time the server has used so far, user and kernel.</summary>
    public TimeSpan ProcessorTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>Resident memory now (VmRSS), in bytes.</summary>
    public long ResidentBytes => ReadStatus("VmRSS:");

    public static async Task<ServerProcess> StartAsync(string serverDll, string dataDirectory)
    {
        int port = FreePort();
        var start = new ProcessStartInfo("dotnet", [serverDll, "--port", $"{port}", "--metrics-port", "-1", "--data", dataDirectory, "--device", "cpu"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the server");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"server: {e.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, $"http://127.0.0.1:{port}");
        using var client = new AssocDbClient(server.Address);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await client.GetStatsAsync();
                return server;
            }
            catch (Exception) when (attempt < 300 && !process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private long ReadStatus(string field)
    {
        string? line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
