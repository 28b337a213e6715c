using AssocDB.Client;
using AssocDB.Client.Ingestion;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// Guards the client library's resumption against the "reconnect-ack race": connections cut while
/// batches and their acknowledgements are in flight, again and again, so that acknowledgements are
/// lost, batches are resent that the server already applied (and may be applying), and a new
/// stream's acknowledgements arrive while it is still resending. The result must equal a clean
/// ingest (nothing lost, nothing applied twice or out of order) and every item be counted once.
/// </summary>
public sealed class ReconnectDuringIngestTests
{
    private const int Concepts = 400;
    private const int Facts = 20_000;

    [Fact]
    public async Task Connections_cut_with_acknowledgements_in_flight_resume_to_a_clean_ingest()
    {
        await using RunningServer server = await RunningServer.StartAsync();
        await server.Client.CreateCollectionAsync("cut", 8);
        await server.Client.CreateCollectionAsync("clean", 8);
        await using var proxy = new CuttingProxy(new Uri(server.Address));
        using var client = new AssocDbClient(proxy.Address);
        var ingester = new BulkIngester(client, new BulkIngestOptions
        {
            Collection = "cut",
            Session = "s",
            // Small batches, many in flight: most cuts lose acknowledgements and strand batches.
            BatchSize = 40,
            MaxInFlight = 8,
            MaxRetries = 100,
            InitialBackoff = TimeSpan.FromMilliseconds(1),
            MaxBackoff = TimeSpan.FromMilliseconds(20),
        });

        Task<IngestCounts> run = ingester.RunAsync(CollectionContents.RandomFacts(Facts, Concepts, seed: 20261201));
        var random = new Random(20261201);
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(random.Next(10, 80)));
            proxy.Cut();
        }

        IngestCounts counts = await run;
        Assert.True(counts.Reconnects >= 10, $"only {counts.Reconnects} reconnects: the cuts missed the ingest");
        Assert.Equal(Facts, counts.Read);
        Assert.Equal(counts.Read, counts.Stored + counts.Duplicate + counts.Resumed);

        await new BulkIngester(server.Client, new BulkIngestOptions { Collection = "clean", Session = "s" }).RunAsync(CollectionContents.RandomFacts(Facts, Concepts, seed: 20261201));
        await CollectionContents.AssertSameAsync(server.Client, "clean", "cut", Enumerable.Range(0, Concepts).Select(concept => $"c{concept}"));
    }
}
