using AssocDB.Engine.Graph;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Tests.Graph;

// Guards that the concept table's own name index answers as a dictionary would: after any sequence
// of creations, renames, deletions and id reuses, every stored name resolves to its id and no other
// name resolves at all, one name at a time or many at once. The index removes a name by moving later
// entries of its probe run back, so a wrong move would strand a name behind a gap; thousands of
// seeded operations over a table that grows many times and keeps long runs check for that.
public sealed class ConceptTableTests
{
    [Fact]
    public void Names_resolve_as_a_dictionary_would_after_creations_renames_and_deletions()
    {
        var table = new ConceptTable();
        var expected = new Dictionary<string, int>(StringComparer.Ordinal);
        var nameOf = new Dictionary<int, string>();
        var random = new Random(3);
        int nextName = 0;
        for (int step = 0; step < 40_000; step++)
        {
            int operation = random.Next(10);
            if (operation < 6 || nameOf.Count == 0)
            {
                // A new concept, on the lowest free id as the collection allocates them.
                int id = table.FreeIds.Any() ? table.FreeIds.First() : table.IdLimit;
                Put(table, expected, nameOf, id, $"concept-{nextName++}");
            }
            else if (operation < 8)
            {
                int id = nameOf.Keys.ElementAt(random.Next(nameOf.Count));
                Put(table, expected, nameOf, id, $"renamed-{nextName++}");
            }
            else
            {
                int id = nameOf.Keys.ElementAt(random.Next(nameOf.Count));
                table.Delete(id);
                expected.Remove(nameOf[id]);
                nameOf.Remove(id);
            }

            if (step % 4_000 == 0)
            {
                AssertResolves(table, expected, nextName);
            }
        }

        AssertResolves(table, expected, nextName);
    }

    [Fact]
    public void A_name_put_on_another_id_moves_there()
    {
        var table = new ConceptTable();
        table.Put(Concept(0, "a"));
        table.Put(Concept(1, "a"));

        Assert.True(table.TryGetId("a", out int id));
        Assert.Equal(1, id);
        Assert.Equal(1, table.Count);
    }

    private static void Put(ConceptTable table, Dictionary<string, int> expected, Dictionary<int, string> nameOf, int id, string name)
    {
        table.Put(Concept(id, name));
        if (nameOf.TryGetValue(id, out string? previous))
        {
            expected.Remove(previous);
        }

        expected[name] = id;
        nameOf[id] = name;
    }

    private static ConceptRecord Concept(int id, string name) => new(id, name, [], RecordCodec.EmptyMap);

    private readonly struct Names(string[] names) : INameList
    {
        public int Count => names.Length;

        public ReadOnlySpan<char> this[int index] => names[index];
    }

    private static void AssertResolves(ConceptTable table, Dictionary<string, int> expected, int namesMade)
    {
        Assert.Equal(expected.Count, table.Count);
        // Every name ever made, stored or not (renamed and deleted ones must not resolve).
        string[] names = [.. Enumerable.Range(0, namesMade).SelectMany(i => new[] { $"concept-{i}", $"renamed-{i}" })];
        foreach (string[] chunk in names.Chunk(1_000))
        {
            var ids = new int[chunk.Length];
            table.FindIds(new Names(chunk), ids);
            for (int i = 0; i < chunk.Length; i++)
            {
                int want = expected.GetValueOrDefault(chunk[i], -1);
                Assert.Equal(want, ids[i]);
                Assert.Equal(want >= 0, table.TryGetId(chunk[i], out int single));
                Assert.Equal(want, want >= 0 ? single : -1);
            }
        }
    }
}
