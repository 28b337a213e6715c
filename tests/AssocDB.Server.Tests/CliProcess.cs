using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace AssocDB.Server.Tests;

/// <summary>
/// The <c>assocdb</c> tool as a real child process, so that a test can signal it as a terminal or
/// a service manager would. Its environment has no <c>ASSOCDB_*</c> variables of the developer's.
/// Disposing kills it if it still runs.
/// </summary>
internal sealed class CliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _error = new();
    private readonly Task _errorRead;
    private readonly Task<string> _output;

    private CliProcess(Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
        // Read as it comes, not by lines: a progress bar redraws one line without ending it.
        _errorRead = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int read;
            while ((read = await process.StandardError.ReadAsync(buffer)) > 0)
            {
                lock (_error)
                {
                    _error.Append(buffer, 0, read);
                }
            }
        });
    }

    /// <summary>What the tool has written to stderr so far.</summary>
    public string Error
    {
        get
        {
            lock (_error)
            {
                return _error.ToString();
            }
        }
    }

    /// <summary>Whether the tool has exited.</summary>
    public bool HasExited => _process.HasExited;

    public static CliProcess Start(params string[] args)
    {
        string directory = AppContext.BaseDirectory;
        // The tool's own deps file names packages that are not in this folder (the ASP.NET framework
        // provides them to the tests), so it runs under the tests' deps file and runtime config.
        // `env --default-signal=INT`: a test run started in the background by a shell without job
        // control has SIGINT ignored, its children inherit that, and .NET leaves it ignored.
        var start = new ProcessStartInfo("env",
        [
            "--default-signal=INT", "dotnet", "exec",
            "--runtimeconfig", Path.Combine(directory, "AssocDB.Server.Tests.runtimeconfig.json"),
            "--depsfile", Path.Combine(directory, "AssocDB.Server.Tests.deps.json"),
            Path.Combine(directory, "assocdb.dll"), .. args,
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Remove("ASSOCDB_SERVER");
        start.Environment.Remove("ASSOCDB_API_KEY");
        return new CliProcess(Process.Start(start) ?? throw new InvalidOperationException("could not start assocdb"));
    }

    /// <summary>Waits until stderr contains <paramref name="text"/>.</summary>
    public Task WaitForErrorAsync(string text) => WaitUntilAsync(() => Task.FromResult(Error.Contains(text, StringComparison.Ordinal)), $"writing '{text}'");

    /// <summary>Waits until <paramref name="condition"/> holds; fails if the tool exits first or a
    /// minute passes.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (_process.HasExited)
            {
                Assert.Fail($"assocdb exited {_process.ExitCode} before {what}: {Error}");
            }

            if (clock.Elapsed > TimeSpan.FromMinutes(1))
            {
                Assert.Fail($"assocdb ran a minute without {what}: {Error}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Ctrl+C.</summary>
    public Task InterruptAsync() => Signals.SendAsync(_process.Id, "INT");

    /// <summary>The exit code and stdout once the tool has exited; fails if that takes over 30 s.</summary>
    public async Task<(int Code, string Output)> ExitAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
        await _errorRead;
        return (_process.ExitCode, await _output);
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
}

/// <summary>POSIX signals by kill(1): .NET itself sends only SIGKILL (<see cref="Process.Kill()"/>).</summary>
internal static class Signals
{
    public static async Task SendAsync(int processId, string signal)
    {
        using Process kill = Process.Start("kill", ["-s", signal, processId.ToString(CultureInfo.InvariantCulture)])
            ?? throw new InvalidOperationException("could not start kill");
        await kill.WaitForExitAsync();
        Assert.True(kill.ExitCode == 0, $"kill -s {signal} {processId} failed");
    }
}
