using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests;

/// <summary>Every operation of the v1 API answers over the wire with the engine's result, mapped
/// field by field.</summary>
public sealed class OperationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly AssocDbClient _client = fixture.Client;

    // The server bounds replies by its own Limits:MaxMessageBytes (16 MiB by default); a client
    // limit of its own below that (gRPC's default is 4 MiB) failed replies the server sent.
    [Fact]
    public async Task The_client_reads_replies_up_to_the_servers_message_limit()
    {
        string c = ServerFixture.NewCollection("ops");
        await _client.CreateCollectionAsync(c, 4);
        string payload = new('p', 1_000_000);
        foreach (int i in Enumerable.Range(0, 6))
        {
            var fact = new FactInput { Head = "hub", Relation = "r", Tail = $"t{i}" };
            fact.Payload["blob"] = payload;
            await _client.AddFactsAsync(c, [fact]);
        }

        NeighborsResponse page = await _client.NeighborsAsync(c, "hub");

        Assert.Equal(6, page.Edges.Count);
        Assert.True(page.CalculateSize() > 4 * 1024 * 1024);
    }

    [Fact]
    public async Task Collections_are_created_listed_described_and_dropped()
    {
        string name = ServerFixture.NewCollection("ops");
        CollectionInfo created = await _client.CreateCollectionAsync(name, 16, Metric.Dot, StoragePrecision.Float16);
        Assert.Equal((name, 16, Metric.Dot, StoragePrecision.Float16, 0L), (created.Name, created.Dimension, created.Metric, created.Precision, created.ConceptCount));
        Assert.Contains(await _client.ListCollectionsAsync(), c => c.Name == name);
        Assert.Equal(16, (await _client.DescribeCollectionAsync(name)).Dimension);
        Assert.True(await _client.DropCollectionAsync(name));
        var missing = await Assert.ThrowsAsync<AssocDbException>(() => _client.DescribeCollectionAsync(name));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Concepts_are_upserted_read_and_deleted()
    {
        string c = ServerFixture.NewCollection("ops");
        await _client.CreateCollectionAsync(c, 3);
        var input = new ConceptInput { Name = "paris", Vector = Vectors.Of([1f, 0.5f, -2f]) };
        input.Metadata["kind"] = "city";
        WriteSummary upserted = await _client.UpsertConceptsAsync(c, [input, new ConceptInput { Name = "france" }]);
        Assert.Equal(2, upserted.Applied);

        ConceptInfo paris = await _client.GetConceptAsync(c, "paris");
        Assert.Equal([1f, 0.5f, -2f], paris.Vector.Values);
        Assert.Equal("city", paris.Metadata["kind"]);
        Assert.Equal(3, (await _client.GetConceptAsync(c, "france")).Vector.Values.Count);

        WriteSummary deleted = await _client.DeleteConceptsAsync(c, ["paris"]);
        Assert.Equal(1, deleted.Applied);
        var gone = await Assert.ThrowsAsync<AssocDbException>(() => _client.GetConceptAsync(c, "paris"));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);

        // A retried delete: refused by default, counted unchanged with missing_ok.
        var again = await Assert.ThrowsAsync<AssocDbException>(() => _client.DeleteConceptsAsync(c, ["paris"]));
        Assert.Equal(StatusCode.NotFound, again.StatusCode);
        WriteSummary retried = await _client.DeleteConceptsAsync(c, ["paris"], missingOk: true);
        Assert.Equal((0, 1), (retried.Applied, retried.Unchanged));
    }

    [Fact]
    public async Task Relations_are_defined_read_and_listed_with_their_properties()
    {
        string c = ServerFixture.NewCollection("ops");
        await _client.CreateCollectionAsync(c, 4);
        RelationInfo spouse = await _client.DefineRelationAsync(c, "spouse_of", symmetric: true, vector: [0f, 1f, 0f, 0f]);
        Assert.True(spouse.Symmetric);
        Assert.Equal([0f, 1f, 0f, 0f], spouse.Vector.Values);
        await _client.DefineRelationAsync(c, "ancestor_of", transitive: true);
        await _client.DefineRelationAsync(c, "parent_of", inverseOf: "child_of");

        RelationInfo parent = await _client.GetRelationAsync(c, "parent_of");
        Assert.Equal("child_of", parent.InverseOf);
        Assert.True((await _client.GetRelationAsync(c, "ancestor_of")).Transitive);
        IReadOnlyList<RelationInfo> all = await _client.ListRelationsAsync(c);
        Assert.Superset(new HashSet<string> { "spouse_of", "ancestor_of", "parent_of" }, all.Select(r => r.Name).ToHashSet());
    }

    [Fact]
    public async Task Facts_are_added_removed_and_seen_from_both_ends()
    {
        string c = ServerFixture.NewCollection("ops");
        await _client.CreateCollectionAsync(c, 4);
        var fact = new FactInput { Head = "alice", Relation = "knows", Tail = "bob", Weight = 0.5f };
        fact.Payload["since"] = "2020";
        WriteSummary added = await _client.AddFactsAsync(c, [fact]);
        Assert.Equal((1, 2, 1), (added.Applied, added.CreatedConcepts, added.CreatedRelations));
        Assert.Equal(1, (await _client.AddFactsAsync(c, [fact])).Unchanged);

        Edge fromBob = Assert.Single((await _client.NeighborsAsync(c, "bob")).Edges);
        Assert.Equal((EdgeDirection.Incoming, "alice", 0.5f, "2020"), (fromBob.Direction, fromBob.Other, fromBob.Weight, fromBob.Payload["since"]));
        Edge fromAlice = Assert.Single((await _client.NeighborsAsync(c, "alice", relation: "knows")).Edges);
        Assert.Equal(EdgeDirection.Outgoing, fromAlice.Direction);
        RelatedResponse related = await _client.RelatedAsync(c, "alice", "knows", maxDepth: 0);
        Assert.Equal(("bob", false), (Assert.Single(related.Answers).Concept, related.Truncated));
        await _client.AddFactsAsync(c, [new FactInput { Head = "alice", Relation = "knows", Tail = "carol" }]);
        // Cut by the limit: the reply says there is more.
        RelatedResponse cut = await _client.RelatedAsync(c, "alice", "knows", limit: 1);
        Assert.Equal(("bob", true), (Assert.Single(cut.Answers).Concept, cut.Truncated));
        // Neighbors a page at a time: the token reads on, and the last page has none.
        NeighborsResponse first = await _client.NeighborsAsync(c, "alice", limit: 1);
        NeighborsResponse second = await _client.NeighborsAsync(c, "alice", limit: 1, pageToken: first.NextPageToken);
        Assert.Equal(("bob", "carol", ""), (Assert.Single(first.Edges).Other, Assert.Single(second.Edges).Other, second.NextPageToken));
        Assert.Equal(["bob", "carol"], (await _client.AllNeighborsAsync(c, "alice", pageSize: 1).CollectAsync()).Select(edge => edge.Other));
        await _client.RemoveFactsAsync(c, [new FactKey { Head = "alice", Relation = "knows", Tail = "carol" }]);

        WriteSummary removed = await _client.RemoveFactsAsync(c, [new FactKey { Head = "alice", Relation = "knows", Tail = "bob" }]);
        Assert.Equal(1, removed.Applied);
        Assert.Empty((await _client.NeighborsAsync(c, "bob")).Edges);
    }

    [Fact]
    public async Task Stats_count_what_is_stored_and_checkpoints_complete()
    {
        string c = ServerFixture.NewCollection("ops");
        await _client.CreateCollectionAsync(c, 8);
        await _client.AddFactAsync(c, "x", "r", "y");
        GetStatsResponse stats = await _client.GetStatsAsync();
        CollectionInfo info = Assert.Single(stats.Collections, s => s.Name == c);
        Assert.Equal((2L, 1L), (info.ConceptCount, info.FactCount));
        Assert.True(stats.TotalFacts >= 1);
        Assert.True(stats.MatrixBytes >= 2 * 8 * 4);
        Assert.Equal("cpu", stats.Device);
        Assert.False(string.IsNullOrEmpty(stats.Version));

        Assert.True(await _client.CheckpointAsync(c) >= 0);
        Assert.True(await _client.CheckpointAsync() >= 0);
    }

    // With the default limits a 5 MB concept fits a message (16 MiB) and a log page (32 MiB) but not
    // a state-store page (4 MiB). Accepted, it would stop the collection and keep the server from
    // starting again (its replay would fail every time); metadata is limited to 1 MiB, so it is
    // refused, naming the field.
    [Fact]
    public async Task A_concept_too_large_for_the_store_is_refused_naming_its_metadata()
    {
        string c = ServerFixture.NewCollection("oversized");
        await _client.CreateCollectionAsync(c, 4);
        var big = new ConceptInput { Name = "big" };
        big.Metadata["blob"] = new string('x', 5_000_000);
        var e = await Assert.ThrowsAsync<AssocDbException>(() => _client.UpsertConceptsAsync(c, [big]));
        Assert.Equal((StatusCode.InvalidArgument, "concepts[0].metadata"), (e.StatusCode, e.Field));

        await _client.AddFactAsync(c, "a", "r", "b");
        Assert.Equal(2, (await _client.DescribeCollectionAsync(c)).ConceptCount);
    }
}
