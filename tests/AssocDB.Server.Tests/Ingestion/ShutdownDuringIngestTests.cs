using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// A graceful stop (SIGTERM) of a real server process ends an ingest stream with its status,
/// UNAVAILABLE, also while batches are in flight and one is being written, never with a reset; the
/// client library then resumes once the server is back, to the same result as a clean ingest.
/// </summary>
public sealed class ShutdownDuringIngestTests() : ServerProcessTests("assocdb-stop-ingest-")
{
    private const int Concepts = 300;

    // With batches in flight the stop nearly always came while the server was writing one; the
    // acknowledgement's write was then cancelled, which grpc-dotnet does by resetting the stream,
    // and every such stream ended CANCELLED (20 of 20 rounds), which the client library gave up on.
    // Then, now and then, the connection's close, which followed the stream's status at once,
    // reached the client before it had read that status, and the stream ended INTERNAL ('the server
    // closed the connection'; 1 of 6 rounds under a parallel test load).
    [Fact]
    public async Task Stopping_the_server_with_batches_in_flight_ends_the_stream_unavailable()
    {
        int port = ServerChildProcess.FreePort();
        string data = Path.Combine(Folder, "data");
        for (int round = 0; round < 6; round++)
        {
            // A few more batches each round, so the stop lands at different points of the stream.
            await StopDuringStreamAsync(port, data, $"c{round}", acknowledgedFirst: 4 + round, readLate: TimeSpan.Zero);
        }
    }

    // The status is sent, but a client that has not read it when the connection closes loses it:
    // a client reading 0.3 s late saw INTERNAL ('the HTTP/2 server closed the connection') or
    // UNAVAILABLE without the server's reason ('connection reset by peer', the batches it had sent
    // unread by the server), every time, until the stopping server kept its connections open a
    // moment after its streams had ended.
    [Fact]
    public async Task A_client_reading_its_acknowledgements_late_still_gets_the_status_of_a_stop()
    {
        int port = ServerChildProcess.FreePort();
        string data = Path.Combine(Folder, "data");
        for (int round = 0; round < 3; round++)
        {
            await StopDuringStreamAsync(port, data, $"c{round}", acknowledgedFirst: 4, readLate: TimeSpan.FromMilliseconds(300));
        }
    }

    /// <summary>
    /// Starts the server, streams batches of 200 facts into a new collection with 4 in flight, and
    /// stops the server (SIGTERM) once <paramref name="acknowledgedFirst"/> + 1 batches are
    /// acknowledged; with a <paramref name="readLate"/> delay the client then stops reading until
    /// that long after the signal. The stream must end with the server's status, UNAVAILABLE, and
    /// every acknowledged batch be durable after a restart.
    /// </summary>
    private async Task StopDuringStreamAsync(int port, string data, string collection, int acknowledgedFirst, TimeSpan readLate)
    {
        Server = await ServerChildProcess.StartAsync(port, data);
        using var client = new AssocDbClient(Server.Address);
        await client.CreateCollectionAsync(collection, 4);
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> call = client.Ingest.Ingest();
        using var window = new SemaphoreSlim(4);
        using var stopSending = new CancellationTokenSource();
        var resumeReading = new TaskCompletionSource();
        if (readLate == TimeSpan.Zero)
        {
            resumeReading.SetResult();
        }

        long acknowledged = -1;
        Task reading = Task.Run(async () =>
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                Interlocked.Exchange(ref acknowledged, call.ResponseStream.Current.Sequence);
                window.Release();
                if (call.ResponseStream.Current.Sequence >= acknowledgedFirst)
                {
                    await resumeReading.Task;
                }
            }
        });
        Task sending = Task.Run(async () =>
        {
            for (int sequence = 0; ; sequence++)
            {
                await window.WaitAsync(stopSending.Token);
                await call.RequestStream.WriteAsync(Batch(collection, sequence), stopSending.Token);
            }
        });

        while (Interlocked.Read(ref acknowledged) < acknowledgedFirst && !reading.IsCompleted)
        {
            await Task.Delay(5);
        }

        Task stopped = Server.StopAsync();
        await Task.Delay(readLate);
        resumeReading.TrySetResult();
        var ended = await Assert.ThrowsAsync<RpcException>(() => reading);
        Assert.True(
            ended.StatusCode == StatusCode.Unavailable && ended.Status.Detail.Contains("shutting down", StringComparison.Ordinal),
            $"{collection}: the stream ended {ended.Status}");
        await stopped;
        await stopSending.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => sending);

        // Every acknowledged batch is durable.
        await Server.DisposeAsync();
        Server = await ServerChildProcess.StartAsync(port, data);
        using var check = new AssocDbClient(Server.Address);
        Assert.True(await check.GetIngestProgressAsync(collection, "s") >= Interlocked.Read(ref acknowledged));
        await Server.DisposeAsync();
        Server = null;
    }

    [Fact]
    public async Task The_client_library_resumes_an_ingest_across_a_stop_and_restart_to_a_clean_result()
    {
        int port = ServerChildProcess.FreePort();
        string data = Path.Combine(Folder, "data");
        Server = await ServerChildProcess.StartAsync(port, data);
        using var client = new AssocDbClient(Server.Address);
        await client.CreateCollectionAsync("stopped", 8);
        await client.CreateCollectionAsync("clean", 8);
        var ingester = new BulkIngester(client, new BulkIngestOptions
        {
            Collection = "stopped",
            Session = "s",
            BatchSize = 200,
            MaxRetries = ServerChildProcess.RetriesAcrossARestart,
        });
        Task<IngestCounts> run = ingester.RunAsync(FactItems(30_000, seed: 20261201));
        while (await client.GetIngestProgressAsync("stopped", "s") < 3_000)
        {
            Assert.False(run.IsCompleted, "the ingest ended before the stop");
            await Task.Delay(10);
        }

        await Server.StopAsync();
        await Server.DisposeAsync();
        Server = await ServerChildProcess.StartAsync(port, data);

        IngestCounts counts = await run;
        Assert.True(counts.Reconnects >= 1, "the ingest never had to resume: the stop came too late");
        Assert.Equal(30_000, counts.Read);
        await new BulkIngester(client, new BulkIngestOptions { Collection = "clean", Session = "s" }).RunAsync(FactItems(30_000, seed: 20261201));
        await CollectionContents.AssertSameAsync(client, "clean", "stopped", Enumerable.Range(0, Concepts).Select(concept => $"c{concept}"));
    }

    private static IngestRequest Batch(string collection, int sequence)
    {
        var batch = new IngestRequest { Collection = collection, Session = "s", Sequence = sequence };
        for (int i = 0; i < 200; i++)
        {
            batch.Facts.Add(new FactInput { Head = $"h{sequence}.{i}", Relation = "r", Tail = $"t{i}" });
        }

        return batch;
    }

    private static IEnumerable<IngestItem> FactItems(int count, int seed) => CollectionContents.RandomFacts(count, Concepts, seed);
}
