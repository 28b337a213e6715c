using AssocDB.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// The server reads ingest batches off the wire itself, not through the generated parser, and must
/// read every request as the generated parser reads it: from raw request bytes of each shape a
/// client may send (weights set or not, payloads, fields repeated or out of order, fields it does
/// not know, concepts, a message arriving in many buffers), the server stores exactly the facts the
/// generated message of the same bytes holds, and bytes the generated parser refuses (invalid
/// UTF-8) are refused.
/// </summary>
public sealed class IngestWireTests
{
    private const int Dimension = 4;

    /// <summary>Ingest with the request sent as given bytes.</summary>
    private static readonly Method<byte[], IngestAck> RawIngest = new(
        MethodType.DuplexStreaming,
        "assocdb.v1.IngestService",
        "Ingest",
        Marshallers.Create<byte[]>(bytes => bytes, bytes => bytes),
        Marshallers.Create<IngestAck>(ack => ack.ToByteArray(), IngestAck.Parser.ParseFrom));

    public static TheoryData<string> Shapes() => new(Requests.Keys);

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task A_request_is_stored_as_the_generated_parser_reads_it(string shape)
    {
        byte[] bytes = Requests[shape](shape);
        await using RunningServer server = await RunningServer.StartAsync();
        await server.Client.CreateCollectionAsync(shape, Dimension);

        using AsyncDuplexStreamingCall<byte[], IngestAck> call = server.Channel.CreateCallInvoker().AsyncDuplexStreamingCall(RawIngest, null, new CallOptions());
        await call.RequestStream.WriteAsync(bytes);
        await call.RequestStream.CompleteAsync();
        IngestRequest expected;
        try
        {
            expected = IngestRequest.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(0, (await server.Client.DescribeCollectionAsync(shape)).FactCount);
            return;
        }

        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        IngestAck ack = call.ResponseStream.Current;

        Assert.Empty(ack.Rejected);
        Assert.Equal(expected.Sequence, ack.Sequence);
        Assert.Equal(expected.Sequence, await server.Client.GetIngestProgressAsync(shape, expected.Session));
        Assert.Equal(expected.Facts.Count, (await server.Client.DescribeCollectionAsync(shape)).FactCount);
        foreach (FactInput fact in expected.Facts)
        {
            Edge stored = Assert.Single(
                (await server.Client.NeighborsAsync(shape, fact.Head, fact.Relation)).Edges,
                edge => edge.Fact.Head == fact.Head && edge.Fact.Tail == fact.Tail);
            Assert.Equal(fact.HasWeight ? fact.Weight : 1f, stored.Weight);
            Assert.Equal(fact.Payload.OrderBy(pair => pair.Key, StringComparer.Ordinal), stored.Payload.OrderBy(pair => pair.Key, StringComparer.Ordinal));
        }

        foreach (ConceptInput concept in expected.Concepts)
        {
            Assert.Equal(concept.Vector.Values, (await server.Client.GetConceptAsync(shape, concept.Name)).Vector.Values);
        }
    }

    // The batch limit was checked once the whole request was read: a 16 MiB message of empty facts
    // (two bytes each) held 8 M of them, read into 370 MB of buffers, or about 2 GB through the
    // generated parser, per stream, before it was refused. The items are now counted first. Here
    // the bytes after the items are not a message: read first, they were refused as malformed.
    // An unknown varint field comes first: the count once took every field but the sequence for
    // a length-delimited one, so its value (202) skipped the facts uncounted.
    [Fact]
    public async Task A_batch_over_the_limit_is_refused_before_it_is_read()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxBatch=100"]);
        await server.Client.CreateCollectionAsync("limited", Dimension);
        byte[] emptyFacts = [.. Enumerable.Range(0, 101).SelectMany(_ => new byte[] { 0x2A, 0x00 })];
        byte[] unknownVarint = [0x48, 0xCA, 0x01];
        byte[] bytes = [.. Request("limited").ToByteArray(), .. unknownVarint, .. emptyFacts, 0x07];

        using AsyncDuplexStreamingCall<byte[], IngestAck> call = server.Channel.CreateCallInvoker().AsyncDuplexStreamingCall(RawIngest, null, new CallOptions());
        await call.RequestStream.WriteAsync(bytes);
        var refused = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal((StatusCode.ResourceExhausted, "batch"), (refused.StatusCode, refused.Trailers.GetValue("assocdb-field")));
        Assert.Contains("holds 101 items; the limit is 100 per call", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(0, (await server.Client.DescribeCollectionAsync("limited")).FactCount);
    }

    private static readonly Dictionary<string, Func<string, byte[]>> Requests = new()
    {
        ["plain"] = collection => Request(collection, Fact("a", "r", "b"), Fact("b", "r", "c")).ToByteArray(),
        ["weights-and-payloads"] = collection => Request(
            collection,
            Fact("a", "r", "b", 0.25f),
            Fact("a", "r", "c", -3f, ("k", "v"), ("é", "ünïcode ✓")),
            Fact("b", "q", "c", 0f, ("e", ""))).ToByteArray(),
        // A field repeated in a message: its last value wins, a map's entries merge (the last of a
        // key winning), and a repeated request field adds its facts.
        ["repeated-fields"] = collection =>
        [
            .. Request(collection, Fact("a", "r", "b")).ToByteArray(),
            .. FactField([.. Fact("x", "r", "y", 2f, ("k", "1"), ("j", "2")).ToByteArray(), .. new FactInput { Tail = "z", Payload = { ["k"] = "3" } }.ToByteArray()]),
            .. new IngestRequest { Session = "later", Sequence = 9 }.ToByteArray(),
        ],
        ["non-ascii"] = collection => Request(collection, Fact("h\u00e9", "r\u00fc", "\u6771\u4eac", 1f, ("\u2713", "\U0001F600"))).ToByteArray(),
        // Invalid UTF-8, which Google.Protobuf refuses, in a payload value and in a name.
        ["invalid-utf8-value"] = collection =>
        [
            .. Request(collection, Fact("a", "r", "b")).ToByteArray(),
            .. FactField([.. Fact("h", "r", "t").ToByteArray(), 0x2A, 7, 0x0A, 1, (byte)'k', 0x12, 2, 0xC3, 0x28]),
        ],
        ["invalid-utf8-name"] = collection =>
        [
            .. Request(collection, Fact("a", "r", "b")).ToByteArray(),
            .. FactField([0x0A, 3, (byte)'b', 0xFF, (byte)'d', 0x12, 1, (byte)'r', 0x1A, 1, (byte)'t']),
        ],
        // A field this version does not know (a varint numbered 9) in a fact and in the request.
        ["unknown-fields"] = collection =>
        [
            .. Request(collection, Fact("a", "r", "b")).ToByteArray(),
            .. FactField([.. Fact("c", "r", "d", 4f).ToByteArray(), 0x48, 1]),
            0x48, 1,
        ],
        ["concepts"] = collection =>
        {
            IngestRequest request = Request(collection, Fact("v", "r", "w"));
            request.Concepts.Add(new ConceptInput { Name = "v", Vector = new Vector { Values = { 0.5f, 0.5f, 0.5f, 0.5f } } });
            return request.ToByteArray();
        },
        // About 400 kB, which reaches the server in many buffers.
        ["many-buffers"] = collection => Request(
            collection,
            [.. Enumerable.Range(0, 8000).Select(i => Fact($"head{i % 97}", $"r{i % 7}", $"tail{i}", i / 8f, ("i", $"{i}"), ("pad", new string('p', 10))))]).ToByteArray(),
    };

    private static IngestRequest Request(string collection, params FactInput[] facts) =>
        new() { Collection = collection, Session = "s", Sequence = 3, Facts = { facts } };

    private static FactInput Fact(string head, string relation, string tail, float? weight = null, params (string Key, string Value)[] payload)
    {
        var fact = new FactInput { Head = head, Relation = relation, Tail = tail };
        if (weight is float given)
        {
            fact.Weight = given;
        }

        foreach ((string key, string value) in payload)
        {
            fact.Payload[key] = value;
        }

        return fact;
    }

    /// <summary>A request's facts field (5) holding the given message bytes.</summary>
    private static byte[] FactField(byte[] message)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(5, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(message));
        output.Flush();
        return stream.ToArray();
    }
}
