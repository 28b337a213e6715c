using AssocDB.Engine.Graph;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Tests.Graph;

// Guards that the edge index finds every stored fact and no other, with the filter in front of its
// adjacency scans: after any sequence of additions, replacements and removals, as the filter fills,
// is rebuilt and grows many times, each live fact is found under its id and a removed or never
// stored one is not. A filter that lost a fact's bits (a rebuild missing an edge, a replacement
// missing its new key) would make a stored fact look new, and the collection would store it twice.
// And the filter must earn its keep: it rules out nearly every fact that is not stored.
public sealed class EdgeIndexTests
{
    private const int Concepts = 3_000;
    private const int Relations = 20;

    [Fact]
    public void Facts_are_found_as_a_dictionary_would_after_additions_replacements_and_removals()
    {
        var index = new EdgeIndex();
        var expected = new Dictionary<(int, int, int), int>();
        var keyOf = new Dictionary<int, (int Head, int Relation, int Tail)>();
        var removed = new List<(int, int, int)>();
        var random = new Random(5);
        for (int step = 0; step < 60_000; step++)
        {
            int operation = random.Next(10);
            var key = (random.Next(Concepts), random.Next(Relations), random.Next(Concepts));
            if (expected.ContainsKey(key))
            {
                continue;
            }

            if (operation < 7 || keyOf.Count == 0)
            {
                // A new fact, on the lowest free id as the collection allocates them.
                int id = index.FreeIds.Any() ? index.FreeIds.First() : index.IdLimit;
                Put(index, expected, keyOf, id, key);
            }
            else if (operation < 8)
            {
                // The same id holding another fact (replay puts every record it reads).
                int id = keyOf.Keys.ElementAt(random.Next(keyOf.Count));
                removed.Add(keyOf[id]);
                Put(index, expected, keyOf, id, key);
            }
            else
            {
                int id = keyOf.Keys.ElementAt(random.Next(keyOf.Count));
                index.Delete(id);
                removed.Add(keyOf[id]);
                expected.Remove(keyOf[id]);
                keyOf.Remove(id);
            }

            if (step % 6_000 == 0)
            {
                AssertFinds(index, expected, removed);
            }
        }

        AssertFinds(index, expected, removed);
    }

    [Fact]
    public void The_filter_rules_out_nearly_every_fact_not_stored()
    {
        var index = new EdgeIndex();
        var stored = new HashSet<(int, int, int)>();
        var random = new Random(9);
        while (stored.Count < 200_000)
        {
            var key = (random.Next(Concepts), random.Next(Relations), random.Next(Concepts));
            if (stored.Add(key))
            {
                index.Put(new EdgeRecord(stored.Count - 1, key.Item1, key.Item2, key.Item3, 1f, null));
            }
        }

        int absent = 0, passed = 0;
        while (absent < 20_000)
        {
            var key = (random.Next(Concepts), random.Next(Relations), random.Next(Concepts));
            if (!stored.Contains(key))
            {
                absent++;
                passed += index.MayContain(key.Item1, key.Item2, key.Item3) ? 1 : 0;
            }
        }

        // About 5 % when the filter is full; 10 % leaves room without hiding a filter that passes all.
        Assert.InRange(passed, 0, absent / 10);
    }

    // Payloads are kept apart from the edges, for those that have one: a payload must follow its
    // edge through a replacement without one, a removal, and the reuse of its id by another edge.
    [Fact]
    public void A_payload_follows_its_edge_through_replacement_removal_and_reuse_of_its_id()
    {
        var index = new EdgeIndex();
        var since = new Dictionary<string, string> { ["since"] = "2019" };
        index.Put(new EdgeRecord(0, 1, 0, 2, 1f, since));
        index.Put(new EdgeRecord(1, 1, 0, 3, 1f, null));
        Assert.Equal("2019", index.Payload(0)["since"]);
        Assert.Empty(index.Payload(1));

        index.Put(new EdgeRecord(0, 1, 0, 2, 2f, null));
        Assert.Empty(index.Payload(0));

        index.Put(new EdgeRecord(1, 1, 0, 3, 1f, since));
        index.Delete(1);
        Assert.Empty(index.Payload(1));
        index.PutUnlinked(new EdgeRecord(1, 4, 0, 5, 1f, null));
        index.Link(new EdgeRecord(1, 4, 0, 5, 1f, null));
        Assert.Empty(index.Payload(1));
        Assert.True(index.TryFind(4, 0, 5, out int found));
        Assert.Equal(1, found);
        Assert.Equal([1], index.EdgesOf(4).ToArray());
    }

    private static void Put(
        EdgeIndex index, Dictionary<(int, int, int), int> expected, Dictionary<int, (int, int, int)> keyOf, int id, (int Head, int Relation, int Tail) key)
    {
        index.Put(new EdgeRecord(id, key.Head, key.Relation, key.Tail, 1f, null));
        if (keyOf.TryGetValue(id, out var previous))
        {
            expected.Remove(previous);
        }

        expected[key] = id;
        keyOf[id] = key;
    }

    private static void AssertFinds(EdgeIndex index, Dictionary<(int, int, int), int> expected, List<(int Head, int Relation, int Tail)> removed)
    {
        Assert.Equal(expected.Count, index.Count);
        foreach (((int head, int relation, int tail), int id) in expected)
        {
            Assert.True(index.TryFind(head, relation, tail, out int found), $"fact ({head}, {relation}, {tail}) on id {id} was not found");
            Assert.Equal(id, found);
        }

        foreach ((int head, int relation, int tail) in removed)
        {
            bool live = expected.TryGetValue((head, relation, tail), out int id);
            Assert.Equal(live, index.TryFind(head, relation, tail, out int found));
            Assert.Equal(live ? id : -1, found);
        }
    }
}
