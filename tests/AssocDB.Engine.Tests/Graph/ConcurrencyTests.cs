using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards isolation between readers and writers: while batches are added and removed from several
// threads, readers never see part of a batch, nothing throws, and the final counts are exact.
public sealed class ConcurrencyTests
{
    private const int FactsPerBatch = 10;

    [Fact]
    public async Task Readers_never_see_half_a_batch_while_writers_add_and_remove()
    {
        await using var db = new TestDatabase();
        Collection collection = db.Create(dimension: 4);
        // A deadline read by every loop, not a timed CancellationTokenSource: its timer callback
        // needs a thread-pool thread, which a loaded machine may not have free.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        bool Running() => clock.Elapsed < TimeSpan.FromSeconds(3);
        int[] written = new int[3];
        int torn = 0, reads = 0;

        Task[] writers = Enumerable.Range(0, written.Length).Select(writer => Task.Run(async () =>
        {
            for (int batch = 0; Running(); batch++)
            {
                string hub = $"w{writer}_{batch}";
                (await collection.AddFactsAsync(Batch(hub))).AssertOk();
                if (batch % 3 == 2)
                {
                    // Every third batch is taken back whole, so readers also race removals.
                    (await collection.RemoveFactsAsync(Batch(hub).Select(fact => new FactKey(fact.Head, fact.Relation, fact.Tail)).ToList())).AssertOk();
                }
                else
                {
                    written[writer]++;
                }
            }
        })).ToArray();

        Task[] readers = Enumerable.Range(0, 3).Select(reader => DedicatedThread.Run(() =>
        {
            var random = new Random(reader);
            while (Running())
            {
                string hub = $"w{random.Next(written.Length)}_{random.Next(Math.Max(1, written.Max() + 2))}";
                Result<EdgePage> edges = collection.Neighbors(hub);
                if (edges.IsOk && edges.Value.Count is not (0 or FactsPerBatch))
                {
                    Interlocked.Increment(ref torn);
                }

                Result<RelatedAnswers> related = collection.Related(hub, "r");
                if (related.IsOk && related.Value.Count is not (0 or FactsPerBatch))
                {
                    Interlocked.Increment(ref torn);
                }

                collection.Describe().AssertOk();
                Interlocked.Increment(ref reads);
            }
        })).ToArray();

        await Task.WhenAll(writers.Concat(readers));

        Assert.Equal(0, torn);
        Assert.True(reads > 100, $"only {reads} reads ran");
        Assert.Equal((long)written.Sum() * FactsPerBatch, collection.Describe().AssertOk().FactCount);
        Assert.Equal(written.Sum() * FactsPerBatch, collection.GetRelation("r").AssertOk().FactCount);
    }

    private static FactInput[] Batch(string hub) =>
        Enumerable.Range(0, FactsPerBatch).Select(j => new FactInput(hub, "r", $"{hub}_t{j}")).ToArray();
}
