using System.Text.Json;
using AssocDB.Cli;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>The standard knowledge-graph train splits go through the real server intact: every
/// distinct triple is stored once, and a sample answers from both ends (the tail's neighbors show
/// the incoming edge).</summary>
public sealed class KnowledgeGraphIngestTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData("kinship")]
    [InlineData("nations")]
    [InlineData("wn18rr")]
    public async Task Train_split_is_stored_whole_and_answers_from_both_ends(string name)
    {
        string collection = ServerFixture.NewCollection(name);
        await fixture.Client.CreateCollectionAsync(collection, 16);
        HashSet<(string Head, string Relation, string Tail)> triples = KgData.Triples(name);

        using JsonDocument summary = await IngestThroughCliAsync(collection, KgData.File(name));
        Assert.Equal(triples.Count, summary.RootElement.GetProperty("stored").GetInt64());
        Assert.Equal(0, summary.RootElement.GetProperty("rejected").GetInt64());

        CollectionInfo info = await fixture.Client.DescribeCollectionAsync(collection);
        Assert.Equal(triples.Count, info.FactCount);
        Assert.Equal(triples.SelectMany(t => new[] { t.Head, t.Tail }).Distinct().Count(), info.ConceptCount);
        Assert.Equal(triples.Select(t => t.Relation).Distinct().Count(), info.RelationCount);

        var random = new Random(5);
        foreach ((string head, string relation, string tail) in triples.OrderBy(t => t).Where(_ => random.Next(100) == 0).Take(25))
        {
            IReadOnlyList<Edge> outgoing = await fixture.Client.NeighborsAsync(collection, head, relation, limit: 10_000);
            Assert.Contains(outgoing, e => e.Direction == EdgeDirection.Outgoing && e.Other == tail);
            IReadOnlyList<Edge> incoming = await fixture.Client.NeighborsAsync(collection, tail, relation, limit: 10_000);
            Assert.Contains(incoming, e => e.Direction == EdgeDirection.Incoming && e.Other == head && e.Fact.Head == head && e.Fact.Tail == tail);
        }
    }

    [Fact]
    public async Task A_rerun_of_the_same_session_resumes_after_the_last_durable_batch()
    {
        string collection = ServerFixture.NewCollection("resume");
        await fixture.Client.CreateCollectionAsync(collection, 16);
        var options = new BulkIngestOptions { Collection = collection, Session = "kinship-train", BatchSize = 500 };

        // The first run dies (as far as the server can tell) after 3,000 items.
        IngestCounts first;
        using (IngestSource source = IngestSource.Open(KgData.File("kinship")))
        {
            first = await new BulkIngester(fixture.Client, options).RunAsync(source.Read().Take(3000));
        }

        using (IngestSource source = IngestSource.Open(KgData.File("kinship")))
        {
            IngestCounts second = await new BulkIngester(fixture.Client, options).RunAsync(source.Read());
            Assert.Equal((3000L, 3000L), (first.Stored, second.Resumed));
            Assert.Equal(KgData.Triples("kinship").Count - 3000, second.Stored);
        }

        Assert.Equal(KgData.Triples("kinship").Count, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
        Assert.Equal(8543, await fixture.Client.GetIngestProgressAsync(collection, "kinship-train"));
    }

    private async Task<JsonDocument> IngestThroughCliAsync(string collection, string file)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync(["ingest", file, "-c", collection, "--json", "--no-progress", "--server", fixture.Server.Address], output, error);
        Assert.True(code == 0, $"assocdb ingest exited {code}: {error}");
        return JsonDocument.Parse(output.ToString());
    }
}
