using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Vectors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace AssocDB.Engine;

/// <summary>
/// An AssocDB database: a folder of collections, each durable on its own write-ahead log and state
/// store. Open one per folder per process (a lock file enforces it); it is safe for concurrent use.
/// </summary>
public sealed partial class AssocDatabase : IDisposable, IAsyncDisposable
{
    /// <summary>The widest vectors a collection may hold.</summary>
    public const int MaxDimension = Validation.MaxDimension;

    /// <summary>The smallest state-store index FASTER takes, 8 buckets of 64 bytes: it refused less as
    /// each collection opened, so one wrong option made every collection unavailable. (A size that
    /// is not a power of two it rounded down without a word.)</summary>
    public const long MinStateIndexBytes = 512;

    /// <summary>The largest state-store index FASTER can address, 2^30 buckets: it counts buckets in
    /// an int, so twice this overflowed as each collection opened, and more it refused.</summary>
    public const long MaxStateIndexBytes = 1L << 36;

    /// <summary>Whether FASTER takes <paramref name="bytes"/> as a state-store index size (see
    /// <see cref="DatabaseOptions.StateIndexBytes"/>): a power of two from
    /// <see cref="MinStateIndexBytes"/> to <see cref="MaxStateIndexBytes"/>.</summary>
    public static bool IsStateIndexSize(long bytes) => long.IsPow2(bytes) && bytes is >= MinStateIndexBytes and <= MaxStateIndexBytes;

    private const string CollectionPrefix = "col-";
    private const string LockFileName = "LOCK";

    /// <summary>The start of the folders a create or drop stages a collection in (then a GUID), which
    /// open never takes for a collection; one left at open is a create or drop that did not finish.</summary>
    private const string StagingPrefix = ".assocdb-staging-";

    private readonly DatabaseOptions _options;
    private readonly torch.Device _device;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly FileStream _lockFile;
    private readonly Dictionary<string, Collection> _collections = new(StringComparer.Ordinal);

    // Folders that could not be opened at open (see DatabaseOptions.RequireAllCollections); few, so searched in order.
    private readonly List<UnavailableCollection> _unavailable = [];
    private readonly Lock _catalog = new();

    // Names whose drop has not ended, each with its end: a create of one would collide with its
    // folder, and the database's close waits for it.
    private readonly Dictionary<string, TaskCompletionSource> _dropping = new(StringComparer.Ordinal);

    /// <summary>Stateless search kernels shared by every collection.</summary>
    private readonly VectorSearch _search = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task _checkpointLoop = Task.CompletedTask;
    private bool _disposed;

    private AssocDatabase(DatabaseOptions options, torch.Device device, FileStream lockFile, ILoggerFactory loggerFactory)
    {
        _options = options;
        _device = device;
        _lockFile = lockFile;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<AssocDatabase>();
    }

    /// <summary>The device the concept matrices live on.</summary>
    public string Device => _device.ToString();

    /// <summary>
    /// Opens (creating if needed) the database in <see cref="DatabaseOptions.DataDirectory"/> and
    /// recovers every collection: last checkpoint, then the log after it.
    /// </summary>
    /// <param name="options">Where the data lives, and how to serve it.</param>
    /// <param name="loggerFactory">Receives recovery's and the checkpoints' logs.</param>
    /// <param name="cancellationToken">Abandons recovery (e.g. a shutdown requested while a long log
    /// replays). Nothing is lost: recovery only reads, so the next open starts it again.</param>
    /// <remarks>A collection that cannot be opened (damaged files, a missing manifest, an I/O error)
    /// is logged and kept as unavailable, and the database opens with the others, unless
    /// <see cref="DatabaseOptions.RequireAllCollections"/> is set: then its error, below, fails the open.
    /// Running out of memory fails the open either way.</remarks>
    /// <exception cref="ArgumentException">The options are invalid (e.g. an unknown device).</exception>
    /// <exception cref="IOException">The folder is in use by another process, or unreadable (a
    /// collection's error names the collection and its folder, as the ones below do).</exception>
    /// <exception cref="InvalidDataException">A collection's files are damaged.</exception>
    /// <exception cref="InvalidOperationException">A collection failed for another reason (e.g. an
    /// option its state store refuses); the message names the original exception's type.</exception>
    /// <exception cref="FileNotFoundException">A collection's folder holds no manifest.</exception>
    /// <exception cref="InsufficientMemoryException">A collection did not fit in memory.</exception>
    /// <exception cref="OperationCanceledException">Recovery was abandoned.</exception>
    public static AssocDatabase Open(DatabaseOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.DataDirectory, nameof(options));
        if (!ComputeDevice.TryResolve(options.Device, out torch.Device device, out string deviceError))
        {
            throw new ArgumentException(deviceError, nameof(options));
        }

        if (options.MaxCollections < 1)
        {
            throw new ArgumentException($"MaxCollections is {options.MaxCollections}; it must be at least 1", nameof(options));
        }

        if (options.IngestSessionsKept < 1)
        {
            throw new ArgumentException($"IngestSessionsKept is {options.IngestSessionsKept}; it must be at least 1", nameof(options));
        }

        if (options.LogPageSizeBits is < 16 or > 30)
        {
            throw new ArgumentException($"LogPageSizeBits is {options.LogPageSizeBits}; it must be 16..30", nameof(options));
        }

        if (!long.IsPow2(options.StateSegmentBytes) || options.StateSegmentBytes < 1L << 16)
        {
            throw new ArgumentException($"StateSegmentBytes is {options.StateSegmentBytes}; it must be a power of two of at least 65536", nameof(options));
        }

        if (!IsStateIndexSize(options.StateIndexBytes))
        {
            throw new ArgumentException(
                $"StateIndexBytes is {options.StateIndexBytes}; it must be a power of two from {MinStateIndexBytes} to {MaxStateIndexBytes} (2^36)", nameof(options));
        }

        if (options.StateCheckpointTimeout is { } checkpointTimeout && checkpointTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"StateCheckpointTimeout is {checkpointTimeout}; it must be positive", nameof(options));
        }

        Directory.CreateDirectory(options.DataDirectory);
        FileStream lockFile;
        try
        {
            lockFile = new FileStream(Path.Combine(options.DataDirectory, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException exception) when (IsLockHeld(exception))
        {
            throw new IOException(
                $"the data folder {options.DataDirectory} is in use by another process (it holds the folder's {LockFileName} file): "
                + "stop that process, or give this one another data folder", exception);
        }
        catch (IOException exception)
        {
            // A read-only mount, a full disk, an I/O error: not another process, which this said of
            // every failure.
            throw new IOException($"the data folder's {LockFileName} file could not be opened in {options.DataDirectory}: {exception.Message}", exception);
        }

        var database = new AssocDatabase(options, device, lockFile, loggerFactory ?? NullLoggerFactory.Instance);
        try
        {
            database.OpenCollections(cancellationToken);
            // Only now: the loop reads the catalog, which recovery fills without its lock.
            if (options.CheckpointInterval > TimeSpan.Zero)
            {
                database._checkpointLoop = database.CheckpointPeriodicallyAsync(database._stopping.Token);
            }

            Log.DatabaseOpened(database._logger, options.DataDirectory, database.Device, database._collections.Count, database._unavailable.Count);
            return database;
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    /// <summary>Whether the open of the lock file failed because another process holds it: the
    /// errno of a refused <c>flock</c> (EWOULDBLOCK: 11 on Linux, 35 on macOS and the BSDs), a sharing
    /// violation on Windows.</summary>
    private static bool IsLockHeld(IOException exception) =>
        exception.HResult == (OperatingSystem.IsWindows() ? unchecked((int)0x80070020) : OperatingSystem.IsLinux() ? 11 : 35);

    private void OpenCollections(CancellationToken cancellationToken)
    {
        // Of two folders holding one collection, the one its name is kept in opens (the one writes
        // went to before the copy was made); the listing's order decided before.
        foreach (string directory in Directory.EnumerateDirectories(_options.DataDirectory)
                     .OrderBy(directory => TryReadManifest(directory)?.Name is { } name && Path.GetFileName(directory) == DirectoryName(name) ? 0 : 1))
        {
            string name = Path.GetFileName(directory);
            if (IsStagingLeftover(directory, name))
            {
                // A create or drop that did not finish: the collection never existed, or is gone. One
                // that cannot be removed (a file in it the server may not delete) kept the database
                // from opening at all.
                if (DeleteStagingFolder(directory) is { } kept)
                {
                    Log.StagingFolderKept(_logger, kept, directory);
                }
                else
                {
                    Log.StagingFolderRemoved(_logger, directory);
                }

                continue;
            }

            if (!name.StartsWith(CollectionPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            // A second folder holding a collection of the same name (a copy of a collection's
            // folder) failed the whole open, after opening it and leaving it open.
            if (TryReadManifest(directory) is { } read && _collections.TryGetValue(read.Name, out Collection? first))
            {
                var duplicate = new IOException($"collection '{read.Name}' is already open from {first.Directory}; move one of the two folders out of the data folder");
                if (_options.RequireAllCollections)
                {
                    throw duplicate;
                }

                _unavailable.Add(new UnavailableCollection(directory, read, duplicate));
                Log.DuplicateCollection(_logger, directory, read.Name, first.Directory);
                continue;
            }

            Collection collection;
            try
            {
                collection = OpenCollection(directory, cancellationToken);
            }
            // Out of memory is no fault of the collection, whose data may be whole: kept as
            // unavailable it would invite a drop, and which collection ran out is chance.
            catch (Exception exception) when (!_options.RequireAllCollections && exception is not (OperationCanceledException or OutOfMemoryException))
            {
                var unavailable = new UnavailableCollection(directory, TryReadManifest(directory), exception);
                _unavailable.Add(unavailable);
                Log.CollectionUnavailable(_logger, exception, unavailable.DisplayName, directory, unavailable.Reason);
                continue;
            }

            _collections.Add(collection.Name, collection);
        }
    }

    /// <summary>The manifest of a collection that failed to open, to name it; null when it is what
    /// failed (missing or damaged), or cannot be read.</summary>
    private static CollectionManifest? TryReadManifest(string directory)
    {
        try
        {
            return CollectionManifest.Read(directory);
        }
        catch (NewerFormatException newer)
        {
            return newer.Manifest;
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            return null;
        }
    }

    /// <summary>Opens a collection's folder at database open. An error names the collection and its
    /// folder (it is what a user sees of a damaged collection: the open's error, or the log line of
    /// an unavailable one), with the original as its inner exception.</summary>
    /// <exception cref="FileNotFoundException">The folder holds no manifest.</exception>
    private Collection OpenCollection(string directory, CancellationToken cancellationToken)
    {
        string manifestPath = Path.Combine(directory, CollectionManifest.FileName);
        // Before the check below, which takes a folder for a missing manifest.
        FolderInPlaceOfFile.Refuse(manifestPath, "the collection's manifest");
        if (!File.Exists(manifestPath))
        {
            // Left as it is: a collection's folder has its manifest from the start (it is staged
            // with it), so this one is not AssocDB's, or lost its manifest, and may hold data.
            throw new FileNotFoundException(
                $"the folder {directory} holds no {CollectionManifest.FileName}, so it is no collection this database can open; "
                + $"restore the file, or move the folder out of {_options.DataDirectory}",
                manifestPath);
        }

        string collection = $"the collection in {directory}";
        try
        {
            CollectionManifest manifest = CollectionManifest.Read(directory);
            collection = $"collection '{manifest.Name}' (in {directory})";
            return Collection.Open(directory, manifest, _options, _device, _search, _loggerFactory.CreateLogger<Collection>(), cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            throw OpenFailed(collection, exception);
        }
    }

    /// <summary>
    /// The error of a collection that could not be opened, naming it, of the same kind: an I/O
    /// error stays an IOException, a denied access an UnauthorizedAccessException, running out of
    /// memory an InsufficientMemoryException, and what reading damaged files throws (AssocDB's checks, a
    /// JSON error in the manifest, a decoder's) an InvalidDataException. Anything else (an option
    /// FASTER refuses, a native library's error, a bug) says nothing of the files, so it is not
    /// called damage: it becomes an InvalidOperationException whose message names the original's
    /// type (see <see cref="WhatHappened"/>).
    /// </summary>
    private static Exception OpenFailed(string collection, Exception exception)
    {
        string message = $"{collection} could not be opened: {WhatHappened(exception)}";
        return exception switch
        {
            IOException => new IOException(message, exception),
            UnauthorizedAccessException => new UnauthorizedAccessException(message, exception),
            OutOfMemoryException => new InsufficientMemoryException(message, exception),
            NewerFormatException => new NotSupportedException(message, exception),
            _ when IsDamage(exception) => new InvalidDataException(message, exception),
            _ => new InvalidOperationException(message, exception),
        };
    }

    /// <summary>Whether an open failed on what the collection's files hold.</summary>
    private static bool IsDamage(Exception exception) => exception is InvalidDataException or JsonException or FormatException;

    /// <summary>Why a collection could not be opened, as its error and its unavailable reason say:
    /// the message of an I/O error, a denied access or damage, whose kind the error's type tells;
    /// otherwise the original's type and message, since its type is what tells a bug or a refused
    /// option from anything the user can repair in the folder.</summary>
    internal static string WhatHappened(Exception cause) =>
        cause is IOException or UnauthorizedAccessException or OutOfMemoryException or NewerFormatException || IsDamage(cause)
            ? cause.Message
            : $"{cause.GetType().FullName}: {cause.Message}";

    /// <summary>Creates a collection.</summary>
    public Result<CollectionInfo> CreateCollection(CollectionSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        EngineError? error = Validation.Name(spec.Name, "name")
            ?? (spec.Dimension is < 1 or > Validation.MaxDimension
                ? EngineError.Invalid("dimension", $"is {spec.Dimension}; it must be 1..{Validation.MaxDimension}")
                : null)
            ?? (Enum.IsDefined(spec.Metric) ? null : EngineError.Invalid("metric", $"{(int)spec.Metric} is not cosine, dot or l2"))
            ?? (Enum.IsDefined(spec.Precision) ? null : EngineError.Invalid("precision", $"{(int)spec.Precision} is not float32, float16 or bfloat16"));
        if (error is not null)
        {
            return error;
        }

        lock (_catalog)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_collections.ContainsKey(spec.Name))
            {
                return new EngineError(ErrorCode.AlreadyExists, "name", $"collection '{spec.Name}' already exists");
            }

            if (_dropping.ContainsKey(spec.Name))
            {
                return new EngineError(ErrorCode.FailedPrecondition, "name", $"collection '{spec.Name}' is being dropped; create it once the drop has returned");
            }

            // Its folder holds data: a create would collide with it, and must not hide it.
            if (FindUnavailable(spec.Name) is { } unavailable)
            {
                return unavailable.Refusal(spec.Name, "name");
            }

            // Collections being dropped still hold their buffers until the drop returns.
            if (_collections.Count + _dropping.Count >= _options.MaxCollections)
            {
                return new EngineError(ErrorCode.ResourceExhausted, "name",
                    $"the database holds {_collections.Count + _dropping.Count} collections, its limit (MaxCollections); drop one first");
            }

            // Built under a staging name and renamed into place, so a crash leaves either nothing or
            // a whole collection (staging folders are removed at open).
            string directory = Path.Combine(_options.DataDirectory, DirectoryName(spec.Name));
            string staging = NewStagingFolder();
            Directory.CreateDirectory(staging);
            var manifest = new CollectionManifest(spec.Name, spec.Dimension, spec.Metric, spec.Precision, CollectionManifest.CurrentFormatVersion, _options.LogPageSizeBits);
            manifest.Write(staging);
            // The manifest's entry in the staging folder, before the folder is renamed into place.
            DirectoryDurability.Flush(staging);
            Directory.Move(staging, directory);
            Collection collection;
            try
            {
                DirectoryDurability.Flush(_options.DataDirectory);
                collection = Collection.Open(directory, manifest, _options, _device, _search, _loggerFactory.CreateLogger<Collection>());
            }
            catch
            {
                // Nothing was written to it: moved back under a staging name (removed at the next open
                // if not now), so the failed create leaves no collection behind and a retry can succeed.
                string failed = NewStagingFolder();
                Directory.Move(directory, failed);
                DeleteStagingFolder(failed);
                throw;
            }

            _collections.Add(spec.Name, collection);
            return collection.Describe();
        }
    }

    /// <summary>A fresh folder path under a staging name, which open never takes for a collection
    /// (and removes).</summary>
    private string NewStagingFolder() => Path.Combine(_options.DataDirectory, StagingPrefix + Guid.NewGuid().ToString("N"));

    /// <summary>The names of staging folders: <see cref="StagingPrefix"/> and a GUID, or a dot and a
    /// GUID as earlier versions named them. Other folders in the data folder, hidden or not, are
    /// not AssocDB's (a user's backup, a desktop's trash) and are left alone.</summary>
    [GeneratedRegex("^\\.(assocdb-staging-)?[0-9a-f]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex StagingFolderName();

    /// <summary>The top-level entries of a collection's folder, and so of a staging folder.</summary>
    private static readonly HashSet<string> CollectionEntries =
        [CollectionManifest.FileName, CollectionManifest.FileName + DurableJson.StagingSuffix, Collection.LogFolder, Collection.StateFolder];

    /// <summary>Whether <paramref name="directory"/> is what a create or drop left staged. A name of
    /// this version's form is AssocDB's; one of the earlier form (a dot and 32 hex digits) is
    /// anybody's (a cache named by a hash), so it counts only while it holds nothing but what a
    /// collection's folder holds (a drop's delete may have emptied it part way).</summary>
    private static bool IsStagingLeftover(string directory, string name) =>
        StagingFolderName().IsMatch(name)
        && (name.StartsWith(StagingPrefix, StringComparison.Ordinal) || HoldsOnlyCollectionEntries(directory));

    /// <summary>Whether <paramref name="directory"/> holds nothing but a collection's entries; a
    /// folder that cannot be listed is not taken for AssocDB's (and does not stop the open).</summary>
    private static bool HoldsOnlyCollectionEntries(string directory)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(directory).All(entry => CollectionEntries.Contains(Path.GetFileName(entry)));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Deletes a folder already renamed to a staging name, which no longer counts as a
    /// collection; if that fails, the next open tries again (the caller's outcome stands). Returns
    /// why it failed, or null.</summary>
    private static Exception? DeleteStagingFolder(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
            return null;
        }
        // A file the server may not delete is UnauthorizedAccessException on Linux.
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return exception;
        }
    }

    /// <summary>Every collection, by name (then folder), unavailable ones included with their reason.</summary>
    public IReadOnlyList<CollectionInfo> ListCollections()
    {
        Collection[] collections;
        UnavailableCollection[] unavailable;
        lock (_catalog)
        {
            collections = [.. _collections.Values];
            unavailable = [.. _unavailable];
        }

        // One dropped since the copy is left out, as it would be had the listing come a moment later.
        return collections.Select(collection => collection.Describe()).Where(described => described.IsOk).Select(described => described.Value)
            .Concat(unavailable.Select(collection => collection.Describe()))
            .OrderBy(info => info.Name, StringComparer.Ordinal)
            .ThenBy(info => info.Folder, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>A collection's definition and counts.</summary>
    public Result<CollectionInfo> DescribeCollection(string name)
    {
        Result<Collection> collection = GetCollection(name, "name");
        Result<CollectionInfo> described = collection.IsOk ? collection.Value.Describe() : collection.Error!;
        // Dropped since it was looked up: the error names the request's field, as the lookup's would.
        return described.IsOk || described.Error!.Code != ErrorCode.NotFound ? described : EngineError.NotFound("name", $"collection '{name}' does not exist");
    }

    /// <summary>The collection to run operations on; errors name <paramref name="field"/>, the
    /// request field that held the name. One that could not be opened is FailedPrecondition giving
    /// the reason; this is the one way to a collection, so nothing reaches an unavailable one.</summary>
    public Result<Collection> GetCollection(string name, string field = "collection")
    {
        if (Validation.Name(name, field) is { } error)
        {
            return error;
        }

        lock (_catalog)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _collections.TryGetValue(name, out Collection? collection) ? collection
                : FindUnavailable(name) is { } unavailable ? unavailable.Refusal(name, field)
                : EngineError.NotFound(field, $"collection '{name}' does not exist");
        }
    }

    /// <summary>The unavailable collection a name means, if any; under the catalog lock.</summary>
    private UnavailableCollection? FindUnavailable(string name)
    {
        string folder = DirectoryName(name);
        return _unavailable.Find(collection => collection.IsNamed(name, folder));
    }

    /// <summary>Drops a collection and deletes its files; an unavailable one too (its folder is
    /// deleted unread), which is how its data is discarded.</summary>
    public async Task<Result<bool>> DropCollectionAsync(string name)
    {
        if (Validation.Name(name, "name") is { } error)
        {
            return error;
        }

        Collection? collection;
        UnavailableCollection? unavailable = null;
        var dropped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_catalog)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_dropping.ContainsKey(name))
            {
                // Before the catalog is touched: a second drop took an unavailable copy of the name
                // out of it, then failed on the name already being dropped.
                return new EngineError(ErrorCode.FailedPrecondition, "name", $"collection '{name}' is being dropped; retry once that drop has ended");
            }

            if (!_collections.Remove(name, out collection))
            {
                unavailable = FindUnavailable(name);
                if (unavailable is null)
                {
                    return EngineError.NotFound("name", $"collection '{name}' does not exist");
                }

                _unavailable.Remove(unavailable);
            }

            _dropping.Add(name, dropped);
        }

        try
        {
            if (collection is not null)
            {
                await collection.CloseAsync(checkpoint: false);
            }

            DeleteCollectionFolder(name, collection?.Directory ?? unavailable!.Directory);
            return true;
        }
        catch (Exception exception)
        {
            // Its folder still in place under its name (the close or the move failed), it stays
            // listed, unavailable, its name taken, and the drop can be retried. An open collection
            // was dropped from the catalog only: hidden, and back after a restart.
            string directory = collection?.Directory ?? unavailable!.Directory;
            if (Directory.Exists(directory))
            {
                lock (_catalog)
                {
                    _unavailable.Add(unavailable ?? new UnavailableCollection(directory, collection!.Manifest, exception, UnavailableCollection.DropFailed));
                }
            }

            throw;
        }
        finally
        {
            lock (_catalog)
            {
                _dropping.Remove(name);
            }

            dropped.SetResult();
        }
    }

    /// <summary>Deletes a dropped collection's folder: renamed to a staging name first, durably, so
    /// that a crash part way never leaves part of a collection under its own name.</summary>
    private void DeleteCollectionFolder(string name, string directory)
    {
        string doomed = NewStagingFolder();
        Directory.Move(directory, doomed);
        // Durable before the drop is reported: a power loss must not bring the collection back.
        // The drop has happened either way, so a failed flush is logged, not reported as a failed drop.
        try
        {
            DirectoryDurability.Flush(_options.DataDirectory);
        }
        catch (IOException exception)
        {
            Log.DropFlushFailed(_logger, exception, name, _options.DataDirectory);
        }

        DeleteStagingFolder(doomed);
    }

    /// <summary>Checkpoints every collection. One stopped by a failed write, or whose checkpoint
    /// failed or timed out, does not stop the ones after it; the first such is then the error
    /// (FailedPrecondition). One dropped meanwhile is skipped silently.</summary>
    public async Task<Result<bool>> CheckpointAsync(CancellationToken cancellationToken = default)
    {
        Collection[] collections;
        lock (_catalog)
        {
            collections = [.. _collections.Values];
        }

        EngineError? firstStopped = null;
        foreach (Collection collection in collections)
        {
            Result<bool> done = await CheckpointOneAsync(collection, cancellationToken);
            if (!done.IsOk && done.Error!.Code != ErrorCode.NotFound)
            {
                firstStopped ??= done.Error;
            }
        }

        return firstStopped is null ? true : firstStopped;
    }

    /// <summary>Checkpoints one collection; a failure the collection did not report as its error is
    /// logged and made one, so that it does not stop the checkpoints of the others.</summary>
    private async Task<Result<bool>> CheckpointOneAsync(Collection collection, CancellationToken cancellationToken)
    {
        try
        {
            return await collection.CheckpointAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // The log still holds every write, so a failed checkpoint loses nothing.
            Log.CheckpointFailed(_logger, exception, collection.Name);
            return collection.CheckpointFailed(exception.Message);
        }
    }

    private async Task CheckpointPeriodicallyAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(_options.CheckpointInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                Collection[] collections;
                lock (_catalog)
                {
                    collections = [.. _collections.Values];
                }

                foreach (Collection collection in collections.Where(collection => collection.HasUncheckpointedWrites))
                {
                    // A failure is retried next tick.
                    await CheckpointOneAsync(collection, stopping);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>The folder of a collection: a hash of its name, since names may be long or hold any character.</summary>
    private static string DirectoryName(string name) =>
        CollectionPrefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)).AsSpan(0, 12));

    /// <summary>Closes every collection (checkpointing first unless configured otherwise) and releases the folder.</summary>
    public ValueTask DisposeAsync() => CloseAsync(_options.CheckpointOnClose);

    /// <summary>
    /// Closes every collection and releases the folder; calling it again, or disposing after it,
    /// does nothing. With <paramref name="checkpoint"/> false nothing is checkpointed: the next open
    /// replays the write-ahead log, as after a crash, and loses nothing that was acknowledged.
    /// </summary>
    public async ValueTask CloseAsync(bool checkpoint)
    {
        Collection[] collections;
        Task[] drops;
        lock (_catalog)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            collections = [.. _collections.Values];
            _collections.Clear();
            drops = [.. _dropping.Values.Select(drop => drop.Task)];
        }

        // Every collection is closed and the folder released even if one close fails: a close
        // that stopped part way left the others open and the folder locked until the process exited.
        // They close together, so that checkpoints which time out (a full disk fails them all)
        // delay the close by one timeout rather than one per collection.
        var failures = new List<Exception>();
        try
        {
            await _stopping.CancelAsync();
            await _checkpointLoop;
            Task[] closing = [.. collections.Select(collection => collection.CloseAsync(checkpoint))];
            await Task.WhenAll(closing).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            failures.AddRange(closing.Where(close => close.IsFaulted).SelectMany(close => close.Exception!.InnerExceptions));
            // A drop still running would delete its folder after the lock is released: under a
            // database opened in its place, which would have opened that collection again.
            await Task.WhenAll(drops);
        }
        finally
        {
            _stopping.Dispose();
            _lockFile.Dispose();
        }

        if (failures.Count > 0)
        {
            throw new AggregateException("closing the database's collections failed", failures);
        }
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
