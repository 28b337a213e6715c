using AssocDB.Engine.Model;

namespace AssocDB.Engine.Tests.Support;

/// <summary>Opens real on-disk databases in a temp folder, and reopens them as a restart would.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly TempDirectory _folder = new();

    public TestDatabase(TimeSpan? checkpointInterval = null, long stateMemoryBytes = 1L << 24, long stateSegmentBytes = 1L << 22, int? ingestSessionsKept = null)
    {
        Options = new DatabaseOptions
        {
            DataDirectory = _folder.Path,
            Device = "cpu",
            CheckpointInterval = checkpointInterval ?? TimeSpan.Zero,
            StateMemoryBytes = stateMemoryBytes,
            StateIndexBytes = 1L << 16,
            StateSegmentBytes = stateSegmentBytes,
            LogPageSizeBits = 22,
            // The storage tests read a damaged collection's error from the open; serving the
            // others instead is tested in UnavailableCollectionTests.
            RequireAllCollections = true,
        };
        if (ingestSessionsKept is int kept)
        {
            Options = Options with { IngestSessionsKept = kept };
        }

        Database = AssocDatabase.Open(Options);
    }

    public DatabaseOptions Options { get; private set; }

    public AssocDatabase Database { get; private set; }

    public string Folder => _folder.Path;

    /// <summary>Closes and reopens the same folder.</summary>
    public async Task ReopenAsync(
        bool checkpointOnClose = true, long? stateMemoryBytes = null, long? stateSegmentBytes = null, int? logPageSizeBits = null, long? minFreeDiskBytes = null, int? ingestSessionsKept = null)
    {
        // The closing database decides by the argument, not by the options it was opened with: a
        // close told to skip the checkpoint must leave the reopen to replay the log.
        await Database.CloseAsync(checkpointOnClose);
        Options = Options with
        {
            StateMemoryBytes = stateMemoryBytes ?? Options.StateMemoryBytes,
            StateSegmentBytes = stateSegmentBytes ?? Options.StateSegmentBytes,
            LogPageSizeBits = logPageSizeBits ?? Options.LogPageSizeBits,
            MinFreeDiskBytes = minFreeDiskBytes ?? Options.MinFreeDiskBytes,
            IngestSessionsKept = ingestSessionsKept ?? Options.IngestSessionsKept,
        };
        Database = AssocDatabase.Open(Options);
    }

    public Collection Create(string name = "test", int dimension = 8, Metric metric = Metric.Cosine)
    {
        Database.CreateCollection(new CollectionSpec(name, dimension, metric)).AssertOk();
        return Database.GetCollection(name).AssertOk();
    }

    public Collection Get(string name = "test") => Database.GetCollection(name).AssertOk();

    public async ValueTask DisposeAsync()
    {
        await Database.DisposeAsync();
        _folder.Dispose();
    }
}

public static class ResultAssertions
{
    public static T AssertOk<T>(this Result<T> result)
    {
        Xunit.Assert.True(result.IsOk, $"expected success, got {result.Error}");
        return result.Value;
    }

    public static EngineError AssertError<T>(this Result<T> result, ErrorCode code, string field)
    {
        Xunit.Assert.False(result.IsOk, $"expected {code} on {field}, got success: {result}");
        Xunit.Assert.Equal(code, result.Error!.Code);
        Xunit.Assert.Equal(field, result.Error.Field);
        return result.Error;
    }
}
