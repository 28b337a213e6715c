using System.Text.Json;
using AssocDB.Cli;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;
using Grpc.Core;

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
            IReadOnlyList<Edge> outgoing = await fixture.Client.AllNeighborsAsync(collection, head, relation).CollectAsync();
            Assert.Contains(outgoing, e => e.Direction == EdgeDirection.Outgoing && e.Other == tail);
            IReadOnlyList<Edge> incoming = await fixture.Client.AllNeighborsAsync(collection, tail, relation).CollectAsync();
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

    // The server logs a batch as one entry, which must fit a 32 MiB log page, and every new concept
    // gets a vector in it: 2,000 facts between 4,000 new concepts at d = 4096 need 64 MiB. The CLI
    // sizes batches by the collection's dimension; one batch of 2,000 was refused on every rerun.
    [Fact]
    public async Task A_fresh_load_at_the_widest_dimension_fits_the_log_page()
    {
        string collection = ServerFixture.NewCollection("wide");
        await fixture.Client.CreateCollectionAsync(collection, 4096);
        string file = Path.Combine(Path.GetTempPath(), $"{collection}.tsv");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 2000).Select(i => $"h{i}\tr\tt{i}"));
        try
        {
            using JsonDocument summary = await IngestThroughCliAsync(collection, file);
            Assert.Equal(2000, summary.RootElement.GetProperty("stored").GetInt64());
            Assert.True(summary.RootElement.GetProperty("batches").GetInt64() >= 4, summary.RootElement.ToString());
            Assert.Equal((2000L, 4000L), ((await fixture.Client.DescribeCollectionAsync(collection)).FactCount, (await fixture.Client.DescribeCollectionAsync(collection)).ConceptCount));
        }
        finally
        {
            File.Delete(file);
        }
    }

    // A session's sequences increase within a stream. One that does not is a client's bug; taken
    // as a resume it would be acknowledged as applied and never written, so it is refused.
    [Fact]
    public async Task A_sequence_that_does_not_increase_within_a_stream_is_refused()
    {
        string collection = ServerFixture.NewCollection("order");
        await fixture.Client.CreateCollectionAsync(collection, 4);
        IngestRequest Batch(long sequence, string head) =>
            new() { Collection = collection, Session = "s", Sequence = sequence, Facts = { new FactInput { Head = head, Relation = "r", Tail = "t" } } };
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> call = fixture.Client.Ingest.Ingest();

        await call.RequestStream.WriteAsync(Batch(10, "a"));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        await call.RequestStream.WriteAsync(Batch(5, "b"));
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("sequence", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(10, await fixture.Client.GetIngestProgressAsync(collection, "s"));
        Assert.Equal(1, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    // A client keeps batches in flight. Written although the batch before it in the stream failed,
    // a batch would move its session's mark past the failed one's sequence, and a resume would
    // then skip the failed batch as applied.
    [Fact]
    public async Task A_batch_sent_behind_a_failing_one_is_not_written()
    {
        string collection = ServerFixture.NewCollection("behind");
        await fixture.Client.CreateCollectionAsync(collection, 4);
        IngestRequest Batch(string session, long sequence, string head) =>
            new() { Collection = collection, Session = session, Sequence = sequence, Facts = { new FactInput { Head = head, Relation = "r", Tail = "t" } } };
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> call = fixture.Client.Ingest.Ingest();

        // The engine refuses the empty session as it plans the write, which may end the stream
        // before the second batch is written.
        await call.RequestStream.WriteAsync(Batch("", 1, "a"));
        await call.RequestStream.WriteUnlessEndedAsync(Batch("s", 2, "b"));

        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("session", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(-1, await fixture.Client.GetIngestProgressAsync(collection, "s"));
        Assert.Equal(0, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    // Ingest streams were uncapped, and each holds up to a message of batch in the engine. One
    // past the limit is refused; a stream that ended makes room for the next.
    [Fact]
    public async Task Streams_past_the_limit_are_refused_until_one_ends()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxIngestStreams=1"]);
        const string Collection = "streams";
        await server.Client.CreateCollectionAsync(Collection, 4);
        IngestRequest Batch(string session) =>
            new() { Collection = Collection, Session = session, Sequence = 0, Facts = { new FactInput { Head = session, Relation = "r", Tail = "t" } } };

        using (AsyncDuplexStreamingCall<IngestRequest, IngestAck> open = server.Client.Ingest.Ingest())
        {
            await open.RequestStream.WriteAsync(Batch("first"));
            Assert.True(await open.ResponseStream.MoveNext(CancellationToken.None));

            using AsyncDuplexStreamingCall<IngestRequest, IngestAck> second = server.Client.Ingest.Ingest();
            // Refused as it starts, the call may end before its batch is written.
            await second.RequestStream.WriteUnlessEndedAsync(Batch("second"));
            var refused = await Assert.ThrowsAsync<RpcException>(() => second.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);

            await open.RequestStream.CompleteAsync();
            Assert.False(await open.ResponseStream.MoveNext(CancellationToken.None));
        }

        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> third = server.Client.Ingest.Ingest();
        await third.RequestStream.WriteAsync(Batch("third"));
        Assert.True(await third.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(2, (await server.Client.DescribeCollectionAsync(Collection)).FactCount);
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
