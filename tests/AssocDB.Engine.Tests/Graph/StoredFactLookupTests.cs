using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards that a stored fact written again is found, however it came into memory: added by a write
// or an ingest, on an id a removal freed, rewritten with a new weight, or loaded at open from the
// checkpoint and the log after it. The duplicate check asks the edge filter first, and a fact the
// filter missed along one of those paths would be taken for new and stored twice. Enough facts
// that the filter is rebuilt several times, and batches large enough to be looked up in parallel.
public sealed class StoredFactLookupTests : DatabaseTests
{
    private const int Concepts = 400;
    private static readonly string[] Relations = ["r0", "r1", "r2", "r3"];

    private readonly Random _random = new(17);
    private long _againSequence;

    /// <summary>The facts the collection should hold, with their weights.</summary>
    private readonly Dictionary<(string Head, string Relation, string Tail), float> _stored = [];

    [Fact]
    public async Task Every_stored_fact_is_found_again_after_removals_reused_ids_new_weights_and_a_reopen()
    {
        Collection collection = Db.Create();
        foreach (FactInput[] batch in NewFacts(6_000).Chunk(2_000))
        {
            Assert.Equal(batch.Length, (await collection.AddFactsAsync(batch)).AssertOk().Applied);
        }

        // Removals free edge ids, which the facts added next take again, lowest first.
        FactKey[] removed = [.. _stored.Keys.Where(_ => _random.Next(4) == 0).Select(key => new FactKey(key.Head, key.Relation, key.Tail))];
        Assert.Equal(removed.Length, (await collection.RemoveFactsAsync(removed)).AssertOk().Applied);
        foreach (FactKey fact in removed)
        {
            _stored.Remove((fact.Head, fact.Relation, fact.Tail));
        }

        await AssertFoundAgainAsync(collection);
        (await collection.CheckpointAsync()).AssertOk();

        // After the checkpoint, for the log to replay: removed facts back, new ones, new weights
        // (the same id and fact put again), and a concept's facts gone with it.
        FactInput[] readded = [.. removed.Take(removed.Length / 2).Select(fact => Stored(new FactInput(fact.Head, fact.Relation, fact.Tail, 2f)))];
        FactInput[] reweighted = [.. _stored.Keys.Where(_ => _random.Next(8) == 0).ToList().Select(key => Stored(new FactInput(key.Head, key.Relation, key.Tail, 3f)))];
        FactInput[] ingested = [.. readded, .. NewFacts(1_500), .. reweighted];
        IngestResult ingest = (await collection.IngestAsync(new IngestBatch("load", 0, [], ingested))).AssertOk();
        Assert.Equal((ingested.Length, 0), (ingest.Facts.Applied, ingest.Facts.Unchanged));
        Assert.Equal(new WriteSummary(1, 0), (await collection.DeleteConceptsAsync(["c7"])).AssertOk());
        foreach (var key in _stored.Keys.Where(key => key.Head == "c7" || key.Tail == "c7").ToList())
        {
            _stored.Remove(key);
        }

        await AssertFoundAgainAsync(collection);

        await Db.ReopenAsync(checkpointOnClose: false);
        await AssertFoundAgainAsync(Db.Get());

        await Db.ReopenAsync();
        await AssertFoundAgainAsync(Db.Get());
    }

    /// <summary>Writes every stored fact again, in one batch and as an ingest: each must be found
    /// unchanged, and the collection must hold as many facts as before.</summary>
    private async Task AssertFoundAgainAsync(Collection collection)
    {
        FactInput[] all = [.. _stored.Select(pair => new FactInput(pair.Key.Head, pair.Key.Relation, pair.Key.Tail, pair.Value))];
        Assert.Equal(new WriteSummary(0, all.Length), (await collection.AddFactsAsync(all)).AssertOk());
        IngestResult ingest = (await collection.IngestAsync(new IngestBatch("again", _againSequence++, [], all))).AssertOk();
        Assert.Equal(new WriteSummary(0, all.Length), ingest.Facts);
        Assert.Equal(all.Length, collection.Describe().AssertOk().FactCount);
    }

    /// <summary><paramref name="count"/> facts not stored yet, recorded as stored.</summary>
    private List<FactInput> NewFacts(int count)
    {
        var facts = new List<FactInput>(count);
        while (facts.Count < count)
        {
            var key = ($"c{_random.Next(Concepts)}", Relations[_random.Next(Relations.Length)], $"c{_random.Next(Concepts)}");
            if (!_stored.ContainsKey(key))
            {
                facts.Add(Stored(new FactInput(key.Item1, key.Item2, key.Item3)));
            }
        }

        return facts;
    }

    private FactInput Stored(FactInput fact)
    {
        _stored[(fact.Head, fact.Relation, fact.Tail)] = fact.Weight;
        return fact;
    }
}
