using System.Diagnostics;
using System.Reflection;
using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// An ingest stream ends when the server begins to stop or when its client goes quiet, with
/// UNAVAILABLE, the status the client library resumes from after its last acknowledged batch. A
/// client that merely sends slowly (or not at all) neither holds the server's shutdown hostage nor
/// keeps one of the limited stream slots for good.
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

            // The stop gives a stream's status 3 s to go out (IngestDrain) and then checkpoints, with
            // fsyncs that a busy disk slows; held by the stream, it took Kestrel's 30 s.
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(20), $"the server took {stopping.Elapsed} to stop with an ingest stream open");
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

    // Streams had no idle limit: as many idle clients as the server's stream limit took every slot,
    // and a frozen client or a half-open connection held its slot for good.
    [Fact]
    public async Task A_stream_whose_client_goes_quiet_is_ended_and_its_slot_freed()
    {
        await using RunningServer server = await RunningServer.StartAsync(
            extraArgs: ["--AssocDB:Limits:MaxIngestStreams=1", "--AssocDB:Limits:IngestIdleTimeout=00:00:05"]);
        await server.Client.CreateCollectionAsync(Collection, 4);
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> quiet = server.Client.Ingest.Ingest();

        // Batches at a steady pace keep the stream for longer than the timeout: it bounds each wait
        // (a pause of a second leaves room for a stall of a loaded machine within each).
        for (int sequence = 0; sequence < 6; sequence++)
        {
            await quiet.RequestStream.WriteAsync(Batch("quiet", sequence));
            Assert.True(await quiet.ResponseStream.MoveNext(CancellationToken.None));
            await Task.Delay(1_200);
        }

        // Bounded: a stream left open would wait here for ever.
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ended = await Assert.ThrowsAsync<RpcException>(() => quiet.ResponseStream.MoveNext(bound.Token));
        Assert.Equal(StatusCode.Unavailable, ended.StatusCode);
        Assert.Contains("Limits:IngestIdleTimeout", ended.Status.Detail, StringComparison.Ordinal);

        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> next = server.Client.Ingest.Ingest();
        await next.RequestStream.WriteAsync(Batch("next", 0));
        Assert.True(await next.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(7, (await server.Client.DescribeCollectionAsync(Collection)).FactCount);
    }

    // Without pings a connection whose client died silently stays open until the operating
    // system gives up on it, with every stream on it. (Kestrel's own pinging is Kestrel's to test;
    // waiting out the real delay here would take over a minute.)
    [Fact]
    public async Task Kestrel_is_set_to_ping_silent_connections_and_close_them_when_unanswered()
    {
        await using RunningServer server = await RunningServer.StartAsync();
        Http2Limits http2 = server.App.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits.Http2;
        Assert.InRange(http2.KeepAlivePingDelay, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        Assert.InRange(http2.KeepAlivePingTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
    }

    // Kestrel aborts a stream it has waited on past the host's shutdown timeout without waiting for
    // its handler, so a handler held in a batch's write goes on once the host's services are
    // disposed, and the first thing it does then is read the drain's stop token (to send the
    // acknowledgement, or to end the stream). A disposed drain threw ObjectDisposedException there
    // (a disposed CancellationTokenSource refuses its token). Holding a real handler across the
    // disposal needs a write that neither finishes nor fails for that long, which nothing but a
    // hook could arrange, so this takes the drain the server ran with (internal to the server,
    // hence reflection) and reads its token as such a handler does.
    [Fact]
    public async Task A_stream_handler_outliving_the_host_can_still_read_the_stop_token()
    {
        RunningServer server = await RunningServer.StartAsync();
        IHostedService drain = server.App.Services.GetServices<IHostedService>().Single(service => service.GetType().Name == "IngestDrain");
        PropertyInfo stopping = drain.GetType().GetProperty("Stopping")!;
        await server.DisposeAsync();

        var token = (CancellationToken)stopping.GetValue(drain)!;
        Assert.True(token.IsCancellationRequested);
        using CancellationTokenRegistration registration = token.Register(() => { });
        using var read = CancellationTokenSource.CreateLinkedTokenSource(CancellationToken.None, token);
        Assert.True(read.IsCancellationRequested);
    }

    private static IngestRequest Batch(string session, int sequence) => new()
    {
        Collection = Collection,
        Session = session,
        Sequence = sequence,
        Facts = { new FactInput { Head = $"{session}{sequence}", Relation = "r", Tail = "t" } },
    };
}
