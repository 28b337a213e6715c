using System.Net;
using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests;

/// <summary>A server with an API key and small limits, shared by <see cref="BadInputTests"/>.</summary>
public sealed class GuardedServerFixture : ServerFixture
{
    public const string Key = "s3cret-key";

    protected override string? ApiKey => Key;

    protected override string[] Args =>
    [
        "--AssocDB:Limits:MaxMessageBytes=65536", "--AssocDB:Limits:MaxK=50", "--AssocDB:Limits:MaxBatch=20",
        "--AssocDB:Limits:MaxDepth=3", "--AssocDB:Limits:MaxDimension=64", "--AssocDB:Limits:MaxResults=100",
        "--metrics-port", "0",
    ];
}

/// <summary>
/// Whatever a client sends, the server answers with the documented status (naming the field at
/// fault) and keeps serving: every test ends by checking that a good call still succeeds.
/// </summary>
public sealed class BadInputTests(GuardedServerFixture fixture) : IClassFixture<GuardedServerFixture>, IAsyncLifetime
{
    private readonly AssocDbClient _client = fixture.Client;
    private readonly string _collection = ServerFixture.NewCollection("bad");

    public async Task InitializeAsync()
    {
        await _client.CreateCollectionAsync(_collection, 4);
        await _client.AddFactAsync(_collection, "a", "r", "b");
    }

    public async Task DisposeAsync()
    {
        // The server still serves after every bad call.
        Assert.Equal(2, (await _client.DescribeCollectionAsync(_collection)).ConceptCount);
    }

    /// <summary>CreateCollection with the request sent as given bytes.</summary>
    private static readonly Method<byte[], byte[]> RawCreateCollection = new(
        MethodType.Unary, "assocdb.v1.CollectionService", "CreateCollection",
        Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

    /// <summary>A field header promising a 127-byte string with 2 bytes left: not a protobuf message.</summary>
    private static readonly byte[] Malformed = [0x0a, 0x7f, 0x41, 0x42];

    [Fact]
    public async Task Malformed_message_is_refused_as_unknown()
    {
        var invoker = fixture.Server.Channel.CreateCallInvoker();
        var headers = new Metadata { { "authorization", "Bearer " + GuardedServerFixture.Key } };
        var call = invoker.AsyncUnaryCall(RawCreateCollection, null, new CallOptions(headers), Malformed);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        // grpc-dotnet parses the request before any interceptor or handler runs and answers a parse
        // failure as it answers any exception a handler throws: UNKNOWN with its generic message.
        // That message shows the status came from the server, not from the client's own checks.
        Assert.Equal((StatusCode.Unknown, "Exception was thrown by handler."), (e.StatusCode, e.Status.Detail));
    }

    // A batch over the limit was counted only once the generated parser had built every item: a
    // message of empty items (two bytes each) holds about half its size in them, each a message
    // with its own maps. The items are now counted before parsing; here the bytes after them are
    // not a message, which parsed first was UNKNOWN.
    // Lists within messages were parsed whole before any check (DefineRelation's rules, the
    // properties of ApplyLearnedProperties, the relations of a search's queries); they are counted
    // through the messages holding them, a path of field numbers ("7.1").
    [Theory]
    [InlineData("FactService", "AddFacts", "2", "facts", 20)]
    [InlineData("FactService", "RemoveFacts", "2", "facts", 20)]
    [InlineData("ConceptService", "UpsertConcepts", "2", "concepts", 20)]
    [InlineData("ConceptService", "DeleteConcepts", "2", "names", 20)]
    [InlineData("QueryService", "Search", "2", "queries", 20)]
    [InlineData("QueryService", "Search", "2.3", "queries.plus", 20 * 64)]
    [InlineData("QueryService", "Search", "2.4", "queries.minus", 20 * 64)]
    [InlineData("RelationService", "DefineRelation", "7.1", "compositions", 20)]
    public async Task A_batch_over_the_limit_is_refused_before_it_is_parsed(string service, string method, string path, string name, int limit)
    {
        var raw = new Method<byte[], byte[]>(MethodType.Unary, $"assocdb.v1.{service}", method, Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));
        byte[] collection = [0x0A, (byte)_collection.Length, .. System.Text.Encoding.ASCII.GetBytes(_collection)];
        var headers = new Metadata { { "authorization", "Bearer " + GuardedServerFixture.Key } };

        var call = fixture.Server.Channel.CreateCallInvoker().AsyncUnaryCall(
            raw, null, new CallOptions(headers), [.. collection, .. EmptyItems(path, limit + 1), 0x07]);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal((StatusCode.ResourceExhausted, name), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
        Assert.Contains($"holds {limit + 1} items; the limit is {limit} per call", e.Status.Detail, StringComparison.Ordinal);
    }

    // A 2 MB message of empty test facts, or of empty properties, built a million messages before
    // any check.
    [Theory]
    [InlineData("Evaluate", "2", "test")]
    [InlineData("ApplyLearnedProperties", "3.1", "properties")]
    public async Task Learning_lists_over_their_limit_are_refused_before_they_are_parsed(string method, string path, string name)
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxMessageBytes=4000000"]);
        await server.Client.CreateCollectionAsync("eval", 4);
        var raw = new Method<byte[], byte[]>(MethodType.Unary, "assocdb.v1.LearningService", method, Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));
        const int Limit = 1_000_000;
        var call = server.Channel.CreateCallInvoker().AsyncUnaryCall(
            raw, null, new CallOptions(), [0x0A, 4, .. "eval"u8, .. EmptyItems(path, Limit + 1), 0x07]);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal((StatusCode.ResourceExhausted, name), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
        Assert.Contains($"holds {Limit + 1} items; the limit is {Limit} per call", e.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary><paramref name="count"/> empty items of the list at <paramref name="path"/> (field
    /// numbers joined by dots), within one message of each field before the last.</summary>
    private static byte[] EmptyItems(string path, int count)
    {
        int[] fields = [.. path.Split('.').Select(int.Parse)];
        byte[] bytes = [.. Enumerable.Range(0, count).SelectMany(_ => new byte[] { (byte)((fields[^1] << 3) | 2), 0x00 })];
        foreach (int field in fields[..^1].Reverse())
        {
            bytes = [(byte)((field << 3) | 2), .. Varint(bytes.Length), .. bytes];
        }

        return bytes;
    }

    private static byte[] Varint(int value)
    {
        var bytes = new List<byte>();
        for (; value >= 0x80; value >>= 7)
        {
            bytes.Add((byte)(value | 0x80));
        }

        bytes.Add((byte)value);
        return [.. bytes];
    }

    // The count stopped at the first group, which Google.Protobuf skips whole and parses on after,
    // and read tags and lengths as 64-bit varints, which it reads as 32-bit ones (dropping higher
    // bits): a message so written passed the count with any number of items, all built by the parser.
    [Theory]
    [InlineData("7B7C", "")] // an empty group (field 15) before the items
    [InlineData("7B0A0012007C", "")] // a group holding what looks like items
    [InlineData("", "tag")] // every item's tag written in five bytes, with bit 32 set
    [InlineData("", "length")] // every item's length written in five bytes, with bit 32 set
    public async Task A_batch_over_the_limit_is_refused_before_it_is_parsed_however_its_bytes_are_written(string prefixHex, string fiveByte)
    {
        var raw = new Method<byte[], byte[]>(MethodType.Unary, "assocdb.v1.FactService", "AddFacts", Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));
        byte[] collection = [0x0A, (byte)_collection.Length, .. System.Text.Encoding.ASCII.GetBytes(_collection)];
        byte tag = (AddFactsRequest.FactsFieldNumber << 3) | 2;
        byte[] item = fiveByte switch
        {
            "tag" => [(byte)(tag | 0x80), 0x80, 0x80, 0x80, 0x10, 0x00],
            "length" => [tag, 0x80, 0x80, 0x80, 0x80, 0x10],
            _ => [tag, 0x00],
        };
        byte[] items = [.. Convert.FromHexString(prefixHex), .. Enumerable.Range(0, 21).SelectMany(_ => item)];
        var headers = new Metadata { { "authorization", "Bearer " + GuardedServerFixture.Key } };

        var call = fixture.Server.Channel.CreateCallInvoker().AsyncUnaryCall(raw, null, new CallOptions(headers), [.. collection, .. items, 0x07]);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal((StatusCode.ResourceExhausted, "facts"), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
        Assert.Contains("holds 21 items; the limit is 20 per call", e.Status.Detail, StringComparison.Ordinal);
    }

    // Kestrel's own request body limit (30,000,000 bytes), which grpc-dotnet lifts for streaming
    // calls only, reset unary calls that a raised Limits:MaxMessageBytes admits: this one, 30.2 MB
    // of 30,000 facts, is answered by the server's own count check instead.
    [Fact]
    public async Task A_unary_call_over_kestrels_default_body_limit_is_read_when_the_message_limit_is_raised()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxMessageBytes=40000000"]);
        await server.Client.CreateCollectionAsync("big", 4);
        var raw = new Method<byte[], byte[]>(MethodType.Unary, "assocdb.v1.FactService", "AddFacts", Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));
        // A fact whose head is a 1,000-byte name: 1,006 bytes with its headers.
        byte[] fact = [(AddFactsRequest.FactsFieldNumber << 3) | 2, 0xEB, 0x07, 0x0A, 0xE8, 0x07, .. Enumerable.Repeat((byte)'h', 1000)];
        byte[] request = [0x0A, 3, .. "big"u8, .. Enumerable.Range(0, 30_000).SelectMany(_ => fact)];
        Assert.InRange(request.Length, 30_000_001, 40_000_000);

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Channel.CreateCallInvoker().AsyncUnaryCall(raw, null, new CallOptions(), request).ResponseAsync);

        Assert.Equal((StatusCode.ResourceExhausted, "facts"), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
        Assert.Contains("holds 30000 items", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Oversized_message_is_resource_exhausted()
    {
        var concept = new ConceptInput { Name = "big" };
        concept.Metadata["blob"] = new string('x', 100_000);
        var e = await Assert.ThrowsAsync<AssocDbException>(() => _client.UpsertConceptsAsync(_collection, [concept]));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task Unknown_collection_is_not_found_naming_the_field()
    {
        var e = await Assert.ThrowsAsync<AssocDbException>(() => _client.AddFactAsync("no-such-collection", "a", "r", "b"));
        Assert.Equal((StatusCode.NotFound, "collection"), (e.StatusCode, e.Field));
    }

    [Fact]
    public async Task Unknown_concept_and_relation_are_not_found_naming_the_field()
    {
        var concept = await Assert.ThrowsAsync<AssocDbException>(() => _client.RelatedAsync(_collection, "zz", "r"));
        Assert.Equal((StatusCode.NotFound, "concept"), (concept.StatusCode, concept.Field));
        var relation = await Assert.ThrowsAsync<AssocDbException>(() => _client.RelatedAsync(_collection, "a", "zz"));
        Assert.Equal((StatusCode.NotFound, "relation"), (relation.StatusCode, relation.Field));
    }

    [Fact]
    public async Task Wrong_dimension_is_invalid_naming_the_item()
    {
        var e = await Assert.ThrowsAsync<AssocDbException>(() =>
            _client.UpsertConceptsAsync(_collection, [new ConceptInput { Name = "ok" }, new ConceptInput { Name = "v", Vector = Vectors.Of([1f, 2f]) }]));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith("concepts[1].vector", e.Field, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NaN_is_invalid_naming_the_component()
    {
        var e = await Assert.ThrowsAsync<AssocDbException>(() =>
            _client.UpsertConceptsAsync(_collection, [new ConceptInput { Name = "v", Vector = Vectors.Of([1f, float.NaN, 0f, 0f]) }]));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("vector", e.Field, StringComparison.Ordinal);
        var weight = await Assert.ThrowsAsync<AssocDbException>(() =>
            _client.AddFactsAsync(_collection, [new FactInput { Head = "a", Relation = "r", Tail = "c", Weight = float.PositiveInfinity }]));
        Assert.Equal((StatusCode.InvalidArgument, "facts[0].weight"), (weight.StatusCode, weight.Field));
    }

    // Describe and drop take the collection in a field called name, and their errors say so.
    [Fact]
    public async Task Describe_and_drop_errors_name_the_name_field()
    {
        Func<Task>[] calls = [() => _client.DescribeCollectionAsync("no-such-collection"), () => _client.DropCollectionAsync("no-such-collection"), () => _client.DescribeCollectionAsync("")];
        foreach (Func<Task> call in calls)
        {
            Assert.Equal("name", (await Assert.ThrowsAsync<AssocDbException>(call)).Field);
        }
    }

    /// <summary>One call per limit and per method that enforces it (with the fixture's limits: k 50,
    /// depth 3, results 100, dimension 64, batch 20): the status it gets and the field it names.</summary>
    private static readonly Dictionary<string, (Func<AssocDbClient, string, Task> Call, StatusCode Code, string Field)> OverLimit = new()
    {
        ["search k = 0"] = ((c, col) => c.SearchAsync(col, Queries.Concept("a"), k: 0), StatusCode.InvalidArgument, "k"),
        ["search k over max"] = ((c, col) => c.SearchAsync(col, Queries.Concept("a"), k: 51), StatusCode.InvalidArgument, "k"),
        ["relate k = 0"] = ((c, col) => c.RelateAsync(col, "a", "b", k: 0), StatusCode.InvalidArgument, "k"),
        ["relate k over max"] = ((c, col) => c.RelateAsync(col, "a", "b", k: 51), StatusCode.InvalidArgument, "k"),
        ["recall k = 0"] = ((c, col) => c.RecallAsync(col, "r", "a", k: 0), StatusCode.InvalidArgument, "k"),
        ["recall k over max"] = ((c, col) => c.RecallAsync(col, "r", "a", k: 51), StatusCode.InvalidArgument, "k"),
        ["related depth over max"] = ((c, col) => c.RelatedAsync(col, "a", "r", maxDepth: 4), StatusCode.InvalidArgument, "max_depth"),
        ["related depth negative"] = ((c, col) => c.RelatedAsync(col, "a", "r", maxDepth: -1), StatusCode.InvalidArgument, "max_depth"),
        ["relate depth over max"] = ((c, col) => c.RelateAsync(col, "a", "b", maxDepth: 4), StatusCode.InvalidArgument, "max_depth"),
        ["related limit = 0"] = ((c, col) => c.RelatedAsync(col, "a", "r", limit: 0), StatusCode.InvalidArgument, "limit"),
        ["related limit over max"] = ((c, col) => c.RelatedAsync(col, "a", "r", limit: 101), StatusCode.InvalidArgument, "limit"),
        ["neighbors limit = 0"] = ((c, col) => c.NeighborsAsync(col, "a", limit: 0), StatusCode.InvalidArgument, "limit"),
        ["neighbors limit over max"] = ((c, col) => c.NeighborsAsync(col, "a", limit: 101), StatusCode.InvalidArgument, "limit"),
        ["neighbors page_token not a token"] = ((c, col) => c.NeighborsAsync(col, "a", pageToken: "next"), StatusCode.InvalidArgument, "page_token"),
        ["neighbors page_token negative"] = ((c, col) => c.NeighborsAsync(col, "a", pageToken: "-5"), StatusCode.InvalidArgument, "page_token"),
        ["dimension over max"] = ((c, _) => c.CreateCollectionAsync(ServerFixture.NewCollection("wide"), 65), StatusCode.InvalidArgument, "dimension"),
        ["facts batch over max"] = ((c, col) => c.AddFactsAsync(col, Items(21, i => new FactInput { Head = "a", Relation = "r", Tail = $"t{i}" })), StatusCode.ResourceExhausted, "facts"),
        ["fact removal batch over max"] = ((c, col) => c.RemoveFactsAsync(col, Items(21, i => new FactKey { Head = "a", Relation = "r", Tail = $"t{i}" })), StatusCode.ResourceExhausted, "facts"),
        ["concepts batch over max"] = ((c, col) => c.UpsertConceptsAsync(col, Items(21, i => new ConceptInput { Name = $"c{i}" })), StatusCode.ResourceExhausted, "concepts"),
        ["names batch over max"] = ((c, col) => c.DeleteConceptsAsync(col, Items(21, i => $"c{i}")), StatusCode.ResourceExhausted, "names"),
        ["queries batch over max"] = ((c, col) => c.SearchAsync(col, Items(21, _ => Queries.Concept("a"))), StatusCode.ResourceExhausted, "queries"),
        ["empty facts batch"] = ((c, col) => c.AddFactsAsync(col, []), StatusCode.InvalidArgument, "facts"),
    };

    public static TheoryData<string> OverLimitCalls => [.. OverLimit.Keys];

    [Theory]
    [MemberData(nameof(OverLimitCalls))]
    public async Task Request_outside_a_limit_is_refused_naming_the_field(string call)
    {
        (Func<AssocDbClient, string, Task> send, StatusCode code, string field) = OverLimit[call];
        var e = await Assert.ThrowsAsync<AssocDbException>(() => send(_client, _collection));
        Assert.Equal((code, field), (e.StatusCode, e.Field));
    }

    [Fact]
    public async Task Duplicate_collection_already_exists()
    {
        var e = await Assert.ThrowsAsync<AssocDbException>(() => _client.CreateCollectionAsync(_collection, 4));
        Assert.Equal((StatusCode.AlreadyExists, "name"), (e.StatusCode, e.Field));
    }

    [Fact]
    public async Task Missing_or_wrong_key_is_unauthenticated_and_health_needs_none()
    {
        using var anonymous = new AssocDbClient(fixture.Server.Address);
        var missing = await Assert.ThrowsAsync<AssocDbException>(() => anonymous.ListCollectionsAsync());
        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
        using var wrong = new AssocDbClient(fixture.Server.Address, "s3cret-kez");
        var bad = await Assert.ThrowsAsync<AssocDbException>(() => wrong.ListCollectionsAsync());
        Assert.Equal(StatusCode.Unauthenticated, bad.StatusCode);
        await fixture.Server.WaitServingAsync();
    }

    // The key was checked by an interceptor, which grpc-dotnet runs only once it has read and
    // parsed the request: a caller without the key could have the server read and parse a message
    // up to the size limit on every call.
    [Fact]
    public async Task A_call_without_the_key_is_refused_before_its_message_is_read()
    {
        CallInvoker invoker = fixture.Server.Channel.CreateCallInvoker();
        // Read, the first would be refused as malformed (UNKNOWN) and the second as too large.
        byte[][] unreadable = [Malformed, new byte[65_537]];
        foreach (byte[] message in unreadable)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(RawCreateCollection, null, new CallOptions(), message).ResponseAsync);
            Assert.Equal((StatusCode.Unauthenticated, "missing 'authorization: Bearer <api key>' header"), (e.StatusCode, e.Status.Detail));
        }

        var wrong = new Metadata { { "authorization", "Bearer s3cret-kez" } };
        var refused = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(RawCreateCollection, null, new CallOptions(wrong), unreadable[1]).ResponseAsync);
        Assert.Equal((StatusCode.Unauthenticated, "invalid API key"), (refused.StatusCode, refused.Status.Detail));

        // Streams too, before their first message.
        using var anonymous = new AssocDbClient(fixture.Server.Address);
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> ingest = anonymous.Ingest.Ingest();
        var streamRefused = await Assert.ThrowsAsync<RpcException>(() => ingest.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, streamRefused.StatusCode);
    }

    [Fact]
    public async Task Metrics_need_the_key_too()
    {
        using var http = new HttpClient();
        var metrics = new Uri(new Uri(fixture.Server.MetricsAddress!), "/metrics");
        using HttpResponseMessage anonymous = await http.GetAsync(metrics);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        using var wrong = new HttpRequestMessage(HttpMethod.Get, metrics) { Headers = { Authorization = new("Bearer", "s3cret-kez") } };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);

        using var keyed = new HttpRequestMessage(HttpMethod.Get, metrics) { Headers = { Authorization = new("Bearer", GuardedServerFixture.Key) } };
        using HttpResponseMessage scraped = await http.SendAsync(keyed);
        Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
        Assert.Contains("assocdb_grpc_requests_total", await scraped.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static IEnumerable<T> Items<T>(int count, Func<int, T> item) => Enumerable.Range(0, count).Select(item);
}
