using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// Guards the client library's resumption against the "reconnect-ack race": connections cut while
/// batches and their acknowledgements are in flight, again and again, so that acknowledgements are
/// lost, batches are resent that the server already applied (and may be applying), and a new
/// stream's acknowledgements arrive while it is still resending. The result must equal a clean
/// ingest (nothing lost, nothing applied twice or out of order) and every item be counted once,
/// every line the server refuses reported once, however its batch became durable.
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
        IngestCounts counts = await IngestWithCutsAsync(server, "cut", CollectionContents.RandomFacts(Facts, Concepts, seed: 20261201), rejected: null);
        Assert.Equal(Facts, counts.Read);
        Assert.Equal(counts.Read, counts.Stored + counts.Duplicate + counts.Resumed);

        await new BulkIngester(server.Client, new BulkIngestOptions { Collection = "clean", Session = "s" }).RunAsync(CollectionContents.RandomFacts(Facts, Concepts, seed: 20261201));
        await CollectionContents.AssertSameAsync(server.Client, "clean", "cut", Enumerable.Range(0, Concepts).Select(concept => $"c{concept}"));
    }

    // A batch resent after its acknowledgement was lost was answered as already applied, without
    // the rejections its write had reported, and counted as resumed: the lines the server refused
    // in it never reached the reject list (nor did those of batches a rerun skipped as durable).
    [Fact]
    public async Task Every_line_the_server_refuses_is_reported_once_however_its_batch_became_durable()
    {
        await using RunningServer server = await RunningServer.StartAsync();
        await server.Client.CreateCollectionAsync("cut", 8);
        var refused = new SortedSet<long>();
        var lines = new List<IngestItem>();
        foreach (IngestItem item in CollectionContents.RandomFacts(Facts, Concepts, seed: 20261201))
        {
            // An empty payload key: the client lets it through, the server refuses the fact.
            if (item.Line % 37 == 0 && item is FactItem fact)
            {
                fact.Fact.Payload.Add("", "no key");
                refused.Add(item.Line);
            }

            lines.Add(item);
        }

        var reported = new List<long>();
        IngestCounts counts = await IngestWithCutsAsync(server, "cut", lines, item => reported.Add(item.Line));
        Assert.Equal(refused, reported.Order());
        Assert.Equal(refused.Count, counts.Rejected);
        Assert.Equal(counts.Read, counts.Stored + counts.Duplicate + counts.Resumed + counts.Rejected);

        // A rerun of the finished session stores nothing and reports the same lines.
        reported.Clear();
        IngestCounts rerun = await new BulkIngester(server.Client, new BulkIngestOptions { Collection = "cut", Session = "s", BatchSize = 40 })
            .RunAsync(lines, item => reported.Add(item.Line));
        Assert.Equal(refused, reported.Order());
        Assert.Equal((0L, 0L, (long)Facts - refused.Count), (rerun.Stored, rerun.Duplicate, rerun.Resumed));
    }

    // After a stream breaks, the server may still count it until it notices (for a half-open
    // connection, when its pings go unanswered), and at its stream limit it refused the reconnect
    // RESOURCE_EXHAUSTED, which ended the run: every loader of a full server failed at one network
    // blip. Here the broken stream's slot is taken by another stream before the reconnect comes.
    [Fact]
    public async Task A_reconnect_refused_at_the_stream_limit_is_retried()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxIngestStreams=1"]);
        await server.Client.CreateCollectionAsync("full", 8);
        await server.Client.CreateCollectionAsync("other", 8);
        await using var proxy = new CuttingProxy(new Uri(server.Address));
        using var client = new AssocDbClient(proxy.Address);
        using var cutDone = new SemaphoreSlim(0);
        var ingester = new BulkIngester(client, new BulkIngestOptions
        {
            Collection = "full",
            Session = "s",
            BatchSize = 10,
            InitialBackoff = TimeSpan.FromSeconds(1),
            MaxBackoff = TimeSpan.FromSeconds(1),
        });
        Task<IngestCounts> run = Task.Run(() => ingester.RunAsync(FactsHeldAfterTheFirstBatch(cutDone)));

        await Polling.UntilAsync(async () => await server.Client.GetIngestProgressAsync("full", "s") == 9, "first batch durable", TimeSpan.FromSeconds(30), Ended(run));
        proxy.Cut();
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> holder = await TakeTheOnlyStreamAsync(server);
        // The ingester reads on, finds its stream broken, and reconnects into the limit.
        cutDone.Release();
        await Polling.UntilAsync(() => Task.FromResult(ingester.Counts.Reconnects >= 2), "refused reconnect", TimeSpan.FromSeconds(30), Ended(run));
        await holder.RequestStream.CompleteAsync();
        Assert.False(await holder.ResponseStream.MoveNext(CancellationToken.None));

        IngestCounts counts = await run.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(20, counts.Read);
        Assert.Equal(20, (await server.Client.DescribeCollectionAsync("full")).FactCount);
    }

    /// <summary>Ten facts, then, once <paramref name="cutDone"/> is released, ten more.</summary>
    private static IEnumerable<IngestItem> FactsHeldAfterTheFirstBatch(SemaphoreSlim cutDone)
    {
        for (int line = 1; line <= 20; line++)
        {
            if (line == 11)
            {
                cutDone.Wait();
            }

            yield return new FactItem("facts", line, new FactInput { Head = $"h{line}", Relation = "r", Tail = $"t{line}" });
        }
    }

    /// <summary>An ingest stream of the server's only one, admitted once the slot is free (a stream
    /// past the limit is refused as it starts).</summary>
    private static async Task<AsyncDuplexStreamingCall<IngestRequest, IngestAck>> TakeTheOnlyStreamAsync(RunningServer server)
    {
        for (int attempt = 0; attempt < 500; attempt++)
        {
            AsyncDuplexStreamingCall<IngestRequest, IngestAck> call = server.Client.Ingest.Ingest();
            await call.RequestStream.WriteUnlessEndedAsync(new IngestRequest { Collection = "other", Session = "holder", Facts = { new FactInput { Head = "a", Relation = "r", Tail = "b" } } });
            try
            {
                Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
                return call;
            }
            catch (RpcException refused) when (refused.StatusCode == StatusCode.ResourceExhausted)
            {
                call.Dispose();
                await Task.Delay(20);
            }
        }

        throw new TimeoutException("the broken stream's slot was not freed within 10 s");
    }

    /// <summary>Why a wait on the ingest's progress can end early: the run ended, or failed.</summary>
    private static Func<string?> Ended(Task<IngestCounts> run) =>
        () => run.IsCompleted ? $"the ingest ended ({run.Exception?.GetBaseException().Message ?? "done"})" : null;

    /// <summary>Ingests <paramref name="items"/> as session "s" through a proxy that cuts the
    /// connection every 10-80 ms, until the ingest ends.</summary>
    private static async Task<IngestCounts> IngestWithCutsAsync(RunningServer server, string collection, IEnumerable<IngestItem> items, Action<RejectedItem>? rejected)
    {
        await using var proxy = new CuttingProxy(new Uri(server.Address));
        using var client = new AssocDbClient(proxy.Address);
        var ingester = new BulkIngester(client, new BulkIngestOptions
        {
            Collection = collection,
            Session = "s",
            // Small batches, many in flight: most cuts lose acknowledgements and strand batches.
            BatchSize = 40,
            MaxInFlight = 8,
            // Failures in a row: a slow disk can make several reconnects in a row lose their first
            // acknowledgement to the next cut. The test needs no limit, only an end.
            MaxRetries = 1000,
            InitialBackoff = TimeSpan.FromMilliseconds(1),
            MaxBackoff = TimeSpan.FromMilliseconds(20),
        });

        Task<IngestCounts> run = ingester.RunAsync(items, rejected);
        var random = new Random(20261201);
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(random.Next(10, 80)));
            proxy.Cut();
        }

        IngestCounts counts = await run;
        Assert.True(counts.Reconnects >= 10, $"only {counts.Reconnects} reconnects: the cuts missed the ingest");
        return counts;
    }
}
