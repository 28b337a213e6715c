using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>Compares what two collections hold, for the tests that check an interrupted ingest
/// against a clean one: nothing lost, nothing applied twice or out of order (weights tell versions
/// of a repeated fact apart).</summary>
internal static class CollectionContents
{
    /// <summary>Asserts that <paramref name="actual"/> holds exactly what <paramref name="expected"/>
    /// does: the same counts, and the same edges, weights included, at every one of <paramref name="concepts"/>.</summary>
    public static async Task AssertSameAsync(AssocDbClient client, string expected, string actual, IEnumerable<string> concepts)
    {
        CollectionInfo want = await client.DescribeCollectionAsync(expected);
        CollectionInfo got = await client.DescribeCollectionAsync(actual);
        Assert.Equal((want.ConceptCount, want.RelationCount, want.FactCount), (got.ConceptCount, got.RelationCount, got.FactCount));
        foreach (string concept in concepts)
        {
            Assert.Equal(await EdgesAsync(client, expected, concept), await EdgesAsync(client, actual, concept));
        }
    }

    /// <summary><paramref name="count"/> random facts between concepts c0, c1, … with repeats, each
    /// line with its own weight: a batch lost, applied twice or out of order leaves a repeated fact
    /// with another weight than a clean ingest's.</summary>
    public static IEnumerable<IngestItem> RandomFacts(int count, int concepts, int seed)
    {
        var random = new Random(seed);
        for (int line = 1; line <= count; line++)
        {
            yield return new FactItem("facts", line, new FactInput
            {
                Head = $"c{random.Next(concepts)}",
                Relation = $"r{random.Next(6)}",
                Tail = $"c{random.Next(concepts)}",
                Weight = line,
            });
        }
    }

    private static async Task<string[]> EdgesAsync(AssocDbClient client, string collection, string concept)
    {
        IReadOnlyList<Edge> edges;
        try
        {
            edges = await client.AllNeighborsAsync(collection, concept).CollectAsync();
        }
        catch (AssocDbException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound)
        {
            return [];
        }

        return [.. edges.Select(e => $"{e.Fact.Head} {e.Fact.Relation} {e.Fact.Tail} {e.Weight}").Order(StringComparer.Ordinal)];
    }
}
