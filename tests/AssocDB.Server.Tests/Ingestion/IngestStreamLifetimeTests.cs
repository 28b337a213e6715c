using System.Diagnostics;
using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// An ingest stream ends when the server begins to stop, with UNAVAILABLE, the status the client
/// library resumes from after its last acknowledged batch: a client that merely sends slowly does
/// not hold the server's shutdown hostage.
/// </summary>
public sealed class IngestStreamLifetimeTests
{
    private const string Collection = "ingested";

    // The stream was read until its client closed it: Kestrel waited out the host's shutdown
    // timeout (30 s) for it, acknowledging batches all the while, then reset the connection.
    [Fact]
    public async Task Stopping_the_server_ends_an_open_stream_at_once_and_keeps_every_acknowledged_batch()
    {
        string data = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        AssocDbClient? sender = null; // its own connection, so that stopping the server, not disposing a client, ends the stream
        try
        {
            Task<bool> next;
            var stopping = new Stopwatch();
            await using (RunningServer server = await RunningServer.StartAsync(dataDirectory: data))
            {
                await server.Client.CreateCollectionAsync(Collection, 4);
                sender = new AssocDbClient(server.Address);
                AsyncDuplexStreamingCall<IngestRequest, IngestAck> stream = sender.Ingest.Ingest();
                for (int sequence = 0; sequence < 3; sequence++)
                {
                    await stream.RequestStream.WriteAsync(Batch("s", sequence));
                    Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
                    Assert.Equal(sequence, stream.ResponseStream.Current.Sequence);
                }

                // The client's next batch is slow to come.
                next = stream.ResponseStream.MoveNext(CancellationToken.None);
                stopping.Start();
            }

            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(10), $"the server took {stopping.Elapsed} to stop with an ingest stream open");
            // The server ends the stream with UNAVAILABLE, then, its last stream done, closes the
            // connection; a client that sees the close before the stream's trailers reports INTERNAL
            // instead. The client library resumes from either.
            var ended = await Assert.ThrowsAsync<RpcException>(() => next);
            Assert.True(
                (ended.StatusCode == StatusCode.Unavailable && ended.Status.Detail.Contains("shutting down", StringComparison.Ordinal))
                    || (ended.StatusCode == StatusCode.Internal && ended.Status.Detail.Contains("server closed the connection", StringComparison.Ordinal)),
                $"the stream ended {ended.Status}");

            await using RunningServer restarted = await RunningServer.StartAsync(dataDirectory: data);
            Assert.Equal(2, await restarted.Client.GetIngestProgressAsync(Collection, "s"));
            Assert.Equal(3, (await restarted.Client.DescribeCollectionAsync(Collection)).FactCount);
        }
        finally
        {
            sender?.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }

    private static IngestRequest Batch(string session, int sequence) => new()
    {
        Collection = Collection,
        Session = session,
        Sequence = sequence,
        Facts = { new FactInput { Head = $"{session}{sequence}", Relation = "r", Tail = "t" } },
    };
}
