using AssocDB.Client;
using AssocDB.Protocol.V1;
using AssocDB.Server.Tests.Ingestion;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace AssocDB.Server.Tests;

/// <summary>
/// A server whose data folder holds a collection that cannot be opened starts and serves the
/// others: the bad one is listed (API, CLI, metrics) with its reason, every call naming it fails
/// with FAILED_PRECONDITION naming it and the reason (never NOT_FOUND: its data exists), and a drop
/// discards it. With <c>RequireAllCollections</c> the server exits 1, as every server did before.
/// </summary>
// One damaged collection made the server exit 1 at start, so every healthy collection in the data
// folder was unreachable until a user repaired or moved the bad one by hand.
public sealed class UnavailableCollectionTests : IAsyncLifetime
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
    private string _brokenFolder = "";

    public async Task InitializeAsync()
    {
        await using (RunningServer server = await RunningServer.StartAsync(dataDirectory: _data))
        {
            foreach (string name in new[] { "healthy", "broken" })
            {
                await server.Client.CreateCollectionAsync(name, 4);
                await server.Client.DefineRelationAsync(name, "mother_of", inverseOf: "child_of");
                await server.Client.AddFactAsync(name, "A", "mother_of", "B");
            }

            _brokenFolder = Path.Combine(_data, (await server.Client.DescribeCollectionAsync("broken")).Folder);
        }

        // The graceful stop checkpointed, and a checkpointed store without its layout file is refused.
        File.Delete(Path.Combine(_brokenFolder, "state", "layout.json"));
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_data, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>A call of each service that names the collection.</summary>
    private static readonly Dictionary<string, Func<AssocDbClient, string, Task>> Calls = new()
    {
        ["describe"] = (c, name) => c.DescribeCollectionAsync(name),
        ["create"] = (c, name) => c.CreateCollectionAsync(name, 4),
        ["upsert concepts"] = (c, name) => c.UpsertConceptsAsync(name, [new ConceptInput { Name = "X" }]),
        ["get relation"] = (c, name) => c.GetRelationAsync(name, "mother_of"),
        ["add facts"] = (c, name) => c.AddFactAsync(name, "B", "mother_of", "C"),
        ["related"] = (c, name) => c.RelatedAsync(name, "B", "child_of"),
        ["search"] = (c, name) => c.SearchAsync(name, Queries.Concept("A")),
        ["checkpoint"] = (c, name) => c.CheckpointAsync(name),
        ["mine"] = (c, name) => c.MineAsync(new MineRequest { Collection = name }),
        ["ingest progress"] = (c, name) => c.GetIngestProgressAsync(name, "s"),
        ["ingest"] = async (c, name) =>
        {
            using AsyncDuplexStreamingCall<IngestRequest, IngestAck> stream = c.Ingest.Ingest();
            await stream.RequestStream.WriteAsync(new IngestRequest { Collection = name, Session = "s", Facts = { new FactInput { Head = "C", Relation = "mother_of", Tail = "D" } } });
            try
            {
                await stream.ResponseStream.MoveNext(CancellationToken.None);
            }
            catch (RpcException e)
            {
                throw new AssocDbException(e);
            }
        },
    };

    [Fact]
    public async Task A_collection_that_cannot_be_opened_is_unavailable_and_the_others_are_served()
    {
        (int exitCode, _, string strictLog) = await ServerChildProcess.RunToExitAsync(
            ["--data", _data, "--AssocDB:RequireAllCollections=true"], new Dictionary<string, string>());
        Assert.True(exitCode == 1, $"the strict server exited {exitCode}:\n{strictLog}");
        Assert.Contains($"collection 'broken' (in {_brokenFolder}) could not be opened", strictLog, StringComparison.Ordinal);

        int metricsPort = ServerChildProcess.FreePort();
        await using ServerChildProcess server = await ServerChildProcess.StartAsync(ServerChildProcess.FreePort(), _data, ["--metrics-port", $"{metricsPort}"]);
        using var client = new AssocDbClient(server.Address);
        string log = await server.LogOnceItHoldsAsync("1 collection(s) could not be opened and are unavailable");
        Assert.Contains("1 collection(s) could not be opened and are unavailable", log, StringComparison.Ordinal);
        Assert.Contains($"'broken' in {Path.GetFileName(_brokenFolder)}: ", log, StringComparison.Ordinal);

        Assert.Equal("A", Assert.Single((await client.RelatedAsync("healthy", "B", "child_of")).Answers).Concept);
        IReadOnlyList<CollectionInfo> listed = await client.ListCollectionsAsync();
        Assert.Equal(["broken", "healthy"], listed.Select(c => c.Name));
        Assert.Equal((CollectionState.Unavailable, Path.GetFileName(_brokenFolder)), (listed[0].State, listed[0].Folder));
        Assert.Contains("layout.json", listed[0].UnavailableReason, StringComparison.Ordinal);
        Assert.Equal((CollectionState.Available, "", 2L), (listed[1].State, listed[1].UnavailableReason, listed[1].ConceptCount));

        foreach ((string call, Func<AssocDbClient, string, Task> send) in Calls)
        {
            AssocDbException refused = await Assert.ThrowsAsync<AssocDbException>(() => send(client, "broken"));
            Assert.True(refused.StatusCode == StatusCode.FailedPrecondition, $"{call}: {refused.StatusCode} {refused.Message}");
            Assert.Contains("collection 'broken' is unavailable", refused.Message, StringComparison.Ordinal);
            Assert.Contains("layout.json", refused.Message, StringComparison.Ordinal);
        }

        // The server serves (health), and says what it cannot serve (metrics, the tool).
        using (GrpcChannel channel = GrpcChannel.ForAddress(server.Address))
        {
            HealthCheckResponse health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        }

        using (var http = new HttpClient())
        {
            string metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"));
            Assert.Contains("\nassocdb_collections_unavailable 1\n", metrics, StringComparison.Ordinal);
        }

        string list = await Tool(0, "collection", "list", "--server", server.Address);
        string brokenRow = Assert.Single(list.Split('\n'), line => line.StartsWith("broken ", StringComparison.Ordinal));
        Assert.Contains("unavailable", brokenRow, StringComparison.Ordinal);
        Assert.Contains("layout.json", brokenRow, StringComparison.Ordinal);
        Assert.Contains("available", Assert.Single(list.Split('\n'), line => line.StartsWith("healthy ", StringComparison.Ordinal)), StringComparison.Ordinal);
        string stats = await Tool(0, "stats", "--server", server.Address);
        Assert.Equal("1", AssocDbTool.Field(stats, "unavailable_collections"));
        Assert.StartsWith($"broken in {Path.GetFileName(_brokenFolder)}: ", AssocDbTool.Field(stats, "unavailable"), StringComparison.Ordinal);
        string refusedByTool = await Tool(1, "related", "B", "child_of", "-c", "broken", "--server", server.Address);
        Assert.Contains("FailedPrecondition", refusedByTool, StringComparison.Ordinal);

        // The drop discards it, and the name is free again.
        Assert.Equal("True", (await Tool(0, "collection", "drop", "broken", "--server", server.Address)).Trim());
        Assert.False(Directory.Exists(_brokenFolder));
        Assert.Equal(["healthy"], (await client.ListCollectionsAsync()).Select(c => c.Name));
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<AssocDbException>(() => client.RelatedAsync("broken", "B", "child_of"))).StatusCode);
        await client.CreateCollectionAsync("broken", 4);
        Assert.Equal("0", AssocDbTool.Field(await Tool(0, "stats", "--server", server.Address), "unavailable_collections"));
    }

    /// <summary>Runs <c>assocdb</c>, checks its exit code, and returns its stdout (stderr when it
    /// is expected to fail).</summary>
    private static async Task<string> Tool(int expectedCode, params string[] args)
    {
        (int code, string output, string error) = await AssocDbTool.RunAsync(args);
        Assert.True(code == expectedCode, $"assocdb {string.Join(' ', args)} exited {code}: {error}");
        return expectedCode == 0 ? output : error;
    }
}
