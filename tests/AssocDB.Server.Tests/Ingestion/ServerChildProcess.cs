using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using AssocDB.Client;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// The server's built dll run with <c>dotnet</c> as a real child process on a fixed loopback port
/// and data folder, so a test can SIGKILL it and start it again at the same address (or, with
/// <see cref="RunToExitAsync"/>, see how it exits). Disposing kills it if it still runs; the caller
/// owns the data folder.
/// </summary>
internal sealed class ServerChildProcess : IAsyncDisposable
{
    /// <summary>
    /// How long a child server is given to start serving, or to exit: a guard against a hang, not a
    /// measure of speed, which no test here asserts. A start loads the runtime, ASP.NET and libtorch
    /// and opens the data folder (replaying its log after a kill). On 2 cores shared with the engine
    /// tests and other servers that took 20-38 s (load average 40-50): the 30 s bounds before this
    /// killed a strict server that had found its broken collection and was stopping, and reported
    /// its exit code as -1 instead of 1.
    /// </summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    /// <summary>Reconnects that outlast a restart taking up to <see cref="Patience"/> at the client's
    /// default backoff (0.25 s, doubling up to 8 s), for a client that must resume across one: the
    /// default 8 give up after about 32 s, and a restart after a kill took up to 38 s under the load
    /// above.</summary>
    public const int RetriesAcrossARestart = 30;

    private readonly Process _process;
    private readonly StringWriter _log = new();

    private ServerChildProcess(Process process, string address)
    {
        _process = process;
        Address = address;
    }

    public string Address { get; }

    /// <summary>What the server wrote to stdout (its log) and stderr, for failure messages.</summary>
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

    /// <summary>
    /// The log once it holds <paramref name="text"/>, or as it is after <see cref="Patience"/>. A
    /// line the server logged before it answered its first call can still reach <see cref="Log"/>
    /// after that answer: the console logger writes from a queue of its own, and the pipe is read
    /// on another thread (seen once in six full test runs on a loaded machine).
    /// </summary>
    public async Task<string> LogOnceItHoldsAsync(string text)
    {
        var clock = Stopwatch.StartNew();
        string log = Log;
        while (!log.Contains(text, StringComparison.Ordinal) && clock.Elapsed < Patience)
        {
            await Task.Delay(20);
            log = Log;
        }

        return log;
    }

    /// <summary>A loopback port free right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the server (with <paramref name="args"/> after the defaults, which they
    /// override) and waits until it answers calls; fails, with the server's log, if it exits first
    /// or does not answer within <see cref="Patience"/>, and kills it then.</summary>
    public static async Task<ServerChildProcess> StartAsync(int port, string dataDirectory, IEnumerable<string>? args = null)
    {
        var process = Process.Start(StartInfo(port, dataDirectory, args ?? [])) ?? throw new InvalidOperationException("could not start the server process");
        var server = new ServerChildProcess(process, $"http://127.0.0.1:{port}");
        process.OutputDataReceived += (_, e) => server.Record(e.Data);
        process.ErrorDataReceived += (_, e) => server.Record(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var client = new AssocDbClient(server.Address);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await client.GetStatsAsync();
                return server;
            }
            catch (AssocDbException) when (!process.HasExited && waited.Elapsed < Patience)
            {
                await Task.Delay(50);
            }
            catch (AssocDbException e)
            {
                string outcome = process.HasExited ? $"exited with code {process.ExitCode}" : $"did not answer within {Patience.TotalMinutes} minutes";
                await server.DisposeAsync();
                throw new InvalidOperationException($"the server at {server.Address} {outcome} ({e.Message}); its log:\n{server.Log}", e);
            }
        }
    }

    /// <summary>
    /// Runs the server (on a free port and a temp data folder, then <paramref name="args"/>, which
    /// may override them) with extra environment variables until it exits, as it does at once on
    /// bad settings; returns its exit code, stderr and stdout (its log). One still running after
    /// <see cref="Patience"/> is killed and reported as exit code -1.
    /// </summary>
    public static async Task<(int ExitCode, string Error, string Output)> RunToExitAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string> environment)
    {
        string data = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        ProcessStartInfo start = StartInfo(0, data, args);
        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        try
        {
            using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the server process");
            Task<string> error = process.StandardError.ReadToEndAsync();
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(Patience);
            int exitCode;
            try
            {
                await process.WaitForExitAsync(timeout.Token);
                exitCode = process.ExitCode;
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                exitCode = -1;
            }

            return (exitCode, await error, await output);
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private void Record(string? line)
    {
        lock (_log)
        {
            _log.WriteLine(line);
        }
    }

    /// <summary>SIGTERM, as a service manager stops the server (a graceful stop), and its exit.</summary>
    public async Task StopAsync()
    {
        await Signals.SendAsync(_process.Id, "TERM");
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGSTOP: the process keeps its sockets open and answers nothing, not even a ping,
    /// like a server whose host hangs. Disposing still kills it.</summary>
    public Task FreezeAsync() => Signals.SendAsync(_process.Id, "STOP");

    /// <summary>SIGKILL: no shutdown, no checkpoint, no flush.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    private static ProcessStartInfo StartInfo(int port, string dataDirectory, IEnumerable<string> args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "AssocDB.Server.dll");
        var start = new ProcessStartInfo("dotnet", [dll, "--port", $"{port}", "--metrics-port", "-1", "--data", dataDirectory, "--device", "cpu", .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        return start;
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
