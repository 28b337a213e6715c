using System.Reflection;
using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

/// <summary>
/// A read never answers from a dropped collection: one that holds the collection when the drop
/// comes finishes first (the drop waits for it), and every read after the drop has returned is
/// NotFound, also through a reference taken before it, and never touches the released matrix.
/// </summary>
// ListRelations, Describe and LastIngestedSequence read under the state lock without asking
// whether the collection was closed, so a handler that had looked the collection up before a drop
// answered from the dropped collection after the drop returned (a resuming ingest client was told
// its batches were durable in a collection that no longer existed).
public sealed class DroppedCollectionReadTests : DatabaseTests
{
    private const int Dimension = 8;
    private const int Concepts = 400;

    [Fact]
    public async Task Every_read_through_a_reference_taken_before_a_drop_is_NotFound_after_it()
    {
        Collection collection = await CreateSampleAsync("doomed");
        Assert.True((await Db.Database.DropCollectionAsync("doomed")).AssertOk());

        foreach ((string read, Func<Collection, EngineError?> attempt) in Reads)
        {
            EngineError? error = attempt(collection);
            Assert.True(error is { Code: ErrorCode.NotFound, Field: "collection" }, $"{read} after the drop: {error?.ToString() ?? "answered"}");
        }

        Db.Database.DescribeCollection("doomed").AssertError(ErrorCode.NotFound, "name");
    }

    [Fact]
    public async Task Reads_racing_a_drop_finish_before_it_or_are_NotFound_and_never_fault()
    {
        for (int round = 0; round < 8; round++)
        {
            string name = $"raced-{round}";
            Collection collection = await CreateSampleAsync(name);
            int dropped = 0;
            Task[] readers = [.. Enumerable.Range(0, 3).Select(reader => Task.Run(() =>
            {
                for (int i = reader; ; i++)
                {
                    (string read, Func<Collection, EngineError?> attempt) = Reads[i % Reads.Length];
                    bool afterDrop = Volatile.Read(ref dropped) == 1;
                    EngineError? error = attempt(collection);
                    if (error is not null)
                    {
                        Assert.True(error is { Code: ErrorCode.NotFound, Field: "collection" }, $"{read}: {error}");
                        return;
                    }

                    Assert.False(afterDrop, $"{read} answered from the collection after its drop returned");
                }
            }))];

            await Task.Delay(20 + (round * 10));
            Assert.True((await Db.Database.DropCollectionAsync(name)).AssertOk());
            Volatile.Write(ref dropped, 1);
            // A reader stops at its first NotFound; any fault (a disposed tensor) fails here.
            await Task.WhenAll(readers).WaitAsync(TimeSpan.FromMinutes(2));
        }
    }

    /// <summary>Each read a client can make of a collection, with its error (null: it answered).</summary>
    private static readonly (string Read, Func<Collection, EngineError?> Attempt)[] Reads =
    [
        ("Describe", c => c.Describe().Error),
        ("ListRelations", c => c.ListRelations().Error),
        ("LastIngestedSequence", c => c.LastIngestedSequence("load").Error),
        ("GetConcept", c => c.GetConcept("c1").Error),
        ("GetRelation", c => c.GetRelation("near").Error),
        ("Related", c => c.Related("c1", "near").Error),
        ("Neighbors", c => c.Neighbors("c1").Error),
        ("Search", c => c.Search([.. Enumerable.Range(0, 300).Select(i => new SearchQuery(Concept: $"c{i}"))], new SearchOptions(K: 5)).Error),
        ("Relate", c => c.Relate("c1", "c2").Error),
        ("Recall", c => c.Recall(new RecallQuery("near", Concept: "c1")).Error),
        ("MineProperties", c => c.MineProperties().Error),
        ("Evaluate", c => c.Evaluate([new FactKey("c1", "near", "c2")]).Error),
    ];

    // The database's close did not wait for a drop in flight, whose delete of the folder could then
    // come after the folder's lock was released: under a database opened in its place, which had
    // opened the collection again.
    [Fact]
    public async Task The_database_close_waits_for_a_drop_in_flight()
    {
        Collection collection = await CreateSampleAsync("doomed");
        // Held as a write in progress holds it: the drop's close of the collection waits for it.
        var writer = (SemaphoreSlim)typeof(Collection).GetField("_writer", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(collection)!;
        await writer.WaitAsync();
        Task<Result<bool>> drop = Db.Database.DropCollectionAsync("doomed");
        // A second drop of the name meanwhile threw (the name added twice) after taking an
        // unavailable copy of it out of the catalog.
        EngineError again = (await Db.Database.DropCollectionAsync("doomed")).AssertError(ErrorCode.FailedPrecondition, "name");
        Assert.Contains("is being dropped", again.Message, StringComparison.Ordinal);
        Task close = Db.Database.CloseAsync(checkpoint: false).AsTask();

        await Task.Delay(300);
        Assert.False(close.IsCompleted, "the database closed before the drop ended");
        writer.Release();
        await close;
        // The drop's delete was done by then (its end is signalled after it).
        Assert.False(Directory.Exists(collection.Directory), "the database closed before the drop deleted the folder");
        Assert.True((await drop.WaitAsync(TimeSpan.FromSeconds(30))).AssertOk());
    }

    private async Task<Collection> CreateSampleAsync(string name)
    {
        Collection collection = Db.Create(name, Dimension);
        var random = new Random(7);
        (await collection.UpsertConceptsAsync([.. Enumerable.Range(0, Concepts).Select(i => new ConceptInput(
            $"c{i}", [.. Enumerable.Range(0, Dimension).Select(_ => (float)random.NextDouble() - 0.5f)]))])).AssertOk();
        (await collection.DefineRelationAsync(new RelationSpec("near", Symmetric: true))).AssertOk();
        (await collection.AddFactsAsync([.. Enumerable.Range(0, Concepts - 1).Select(i => new FactInput($"c{i}", "near", $"c{i + 1}"))])).AssertOk();
        (await collection.IngestAsync(new IngestBatch("load", 0, [], []))).AssertOk();
        return collection;
    }
}
