using System.Diagnostics;
using AssocDB.Engine;
using AssocDB.Engine.Model;
using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;

namespace AssocDB.Server.Hosting;

/// <summary>
/// Owns the database for the server's lifetime. It is opened in the background once the host
/// starts, so the server listens at once and answers UNAVAILABLE (health: NOT_SERVING) while the
/// engine recovers. After Kestrel has drained its calls at shutdown it takes a checkpoint, so the
/// next start replays no log.
/// </summary>
internal sealed partial class DatabaseHost(
    AssocServerOptions options,
    DatabaseOpener opener,
    ILoggerFactory loggerFactory,
    IHostApplicationLifetime lifetime,
    ILogger<DatabaseHost> logger) : IHostedLifecycleService, IAsyncDisposable
{
    private volatile AssocDatabase? _database;
    private Task _opening = Task.CompletedTask;
    private readonly long _started = Stopwatch.GetTimestamp();

    /// <summary>Whether the database is open and serving.</summary>
    public bool IsOpen => _database is not null;

    /// <summary>Time since the server was built.</summary>
    public TimeSpan Uptime => Stopwatch.GetElapsedTime(_started);

    /// <summary>The open database; UNAVAILABLE while it is still recovering.</summary>
    public AssocDatabase Database => _database ?? throw GrpcErrors.Recovering();

    /// <summary>A collection named by a request's <c>collection</c> field; NOT_FOUND naming that
    /// field, or FAILED_PRECONDITION with the reason when it could not be opened.</summary>
    public Collection Collection(string name) => Database.GetCollection(name).Unwrap();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _opening = Task.Run(Open, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _opening.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            LogShutdownDuringOpen();
            return;
        }

        if (_database is not { } database)
        {
            return;
        }

        // Not on the host's token: when Kestrel waited the whole shutdown timeout for an open stream,
        // that token has already run out, and a cancelled checkpoint would be skipped and its
        // exception end the process. Skipping is safe (the log holds every write) but makes the
        // next start replay all of it, so the checkpoint takes the time it needs.
        var clock = Stopwatch.StartNew();
        try
        {
            Result<bool> done = await database.CheckpointAsync(CancellationToken.None);
            if (done.IsOk)
            {
                LogShutdownCheckpoint(clock.Elapsed.TotalSeconds);
            }
            else
            {
                LogShutdownCheckpointIncomplete(done.Error!.Message);
            }
        }
        catch (Exception exception)
        {
            LogShutdownCheckpointFailed(exception);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _opening;
        if (_database is { } database)
        {
            _database = null;
            await database.DisposeAsync();
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Open()
    {
        string directory = Path.GetFullPath(options.DataDirectory);
        // The shutdown checkpoint is taken in StoppedAsync, where it is logged and timed.
        var databaseOptions = new DatabaseOptions
        {
            DataDirectory = directory,
            Device = options.Device,
            CheckpointOnClose = false,
            MaxCollections = options.Limits.MaxCollections,
            IngestSessionsKept = options.Limits.IngestSessionsKept,
            RequireAllCollections = options.RequireAllCollections,
        };
        if (options.CheckpointInterval is TimeSpan interval)
        {
            databaseOptions = databaseOptions with { CheckpointInterval = interval };
        }

        if (options.MinFreeDiskBytes is long reserve)
        {
            databaseOptions = databaseOptions with { MinFreeDiskBytes = reserve };
        }

        if (options.StateIndexBytes is long indexBytes)
        {
            databaseOptions = databaseOptions with { StateIndexBytes = indexBytes };
        }

        LogOpening(directory, options.Device);
        var clock = Stopwatch.StartNew();
        try
        {
            _database = opener(databaseOptions, loggerFactory, lifetime.ApplicationStopping);
            LogOpened(clock.Elapsed.TotalSeconds);
            // The engine has logged each with its error; this is the line an operator sees at start.
            string[] unavailable = [.. _database.ListCollections().Where(c => c.State == CollectionState.Unavailable).Select(Unavailable)];
            if (unavailable.Length > 0)
            {
                LogCollectionsUnavailable(unavailable.Length, string.Join("; ", unavailable));
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // Recovery only reads: the next start begins it again, so a stop need not wait for it.
            LogRecoveryAbandoned(clock.Elapsed.TotalSeconds);
        }
        catch (Exception e)
        {
            // A fault, not an outcome: the server cannot serve without its data. Out of memory too
            // (a large log replayed into too small a machine): left unobserved, it would leave the
            // server answering UNAVAILABLE for ever.
            LogOpenFailed(e, directory);
            Environment.ExitCode = 1;
            lifetime.StopApplication();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Opening the database in {Directory} on device {Device}")]
    private partial void LogOpening(string directory, string device);

    [LoggerMessage(Level = LogLevel.Information, Message = "Database open and serving after {Seconds:F2} s")]
    private partial void LogOpened(double seconds);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Could not open the database in {Directory}; stopping")]
    private partial void LogOpenFailed(Exception exception, string directory);

    private static string Unavailable(CollectionInfo collection) =>
        $"{(collection.Name.Length > 0 ? $"'{collection.Name}'" : "(name unknown)")} in {collection.Folder}: {collection.UnavailableReason}";

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} collection(s) could not be opened and are unavailable: calls naming them fail with FAILED_PRECONDITION until they are dropped (which deletes their folders) or repaired and the server restarted (AssocDB:RequireAllCollections=true refuses to start instead): {Collections}")]
    private partial void LogCollectionsUnavailable(int count, string collections);

    [LoggerMessage(Level = LogLevel.Information, Message = "Shutdown checkpoint taken in {Seconds:F2} s")]
    private partial void LogShutdownCheckpoint(double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutdown checkpoint skipped a collection: {Reason}; the log keeps its writes")]
    private partial void LogShutdownCheckpointIncomplete(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Shutdown checkpoint failed; the log keeps every write, and the next start replays it")]
    private partial void LogShutdownCheckpointFailed(Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopped while the database was still opening; no shutdown checkpoint")]
    private partial void LogShutdownDuringOpen();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recovery abandoned after {Seconds:F2} s: the server was asked to stop; the next start recovers again")]
    private partial void LogRecoveryAbandoned(double seconds);
}
