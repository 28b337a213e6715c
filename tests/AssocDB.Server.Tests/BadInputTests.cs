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

    [Fact]
    public async Task Malformed_message_is_refused()
    {
        var method = new Method<byte[], byte[]>(
            MethodType.Unary, "assocdb.v1.CollectionService", "CreateCollection",
            Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));
        var invoker = fixture.Server.Channel.CreateCallInvoker();
        var headers = new Metadata { { "authorization", "Bearer " + GuardedServerFixture.Key } };
        // A field header promising a 127-byte string with 2 bytes left: not a protobuf message.
        var call = invoker.AsyncUnaryCall(method, null, new CallOptions(headers), [0x0a, 0x7f, 0x41, 0x42]);
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        Assert.NotEqual(StatusCode.OK, e.StatusCode);
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

    [Fact]
    public async Task Limits_on_depth_results_dimension_and_batch_name_the_field()
    {
        var depth = await Assert.ThrowsAsync<AssocDbException>(() => _client.RelatedAsync(_collection, "a", "r", maxDepth: 4));
        Assert.Equal((StatusCode.InvalidArgument, "max_depth"), (depth.StatusCode, depth.Field));
        var limit = await Assert.ThrowsAsync<AssocDbException>(() => _client.NeighborsAsync(_collection, "a", limit: 0));
        Assert.Equal((StatusCode.InvalidArgument, "limit"), (limit.StatusCode, limit.Field));
        var dimension = await Assert.ThrowsAsync<AssocDbException>(() => _client.CreateCollectionAsync(ServerFixture.NewCollection("wide"), 65));
        Assert.Equal((StatusCode.InvalidArgument, "dimension"), (dimension.StatusCode, dimension.Field));
        var batch = await Assert.ThrowsAsync<AssocDbException>(() =>
            _client.AddFactsAsync(_collection, Enumerable.Range(0, 21).Select(i => new FactInput { Head = "a", Relation = "r", Tail = $"t{i}" })));
        Assert.Equal((StatusCode.ResourceExhausted, "facts"), (batch.StatusCode, batch.Field));
        var empty = await Assert.ThrowsAsync<AssocDbException>(() => _client.AddFactsAsync(_collection, []));
        Assert.Equal((StatusCode.InvalidArgument, "facts"), (empty.StatusCode, empty.Field));
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

    [Fact]
    public async Task Expired_deadline_and_cancellation_are_honoured()
    {
        var request = new ListCollectionsRequest();
        var headers = new Metadata { { "authorization", "Bearer " + GuardedServerFixture.Key } };
        var stub = new CollectionService.CollectionServiceClient(fixture.Server.Channel);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await stub.ListCollectionsAsync(request, headers, deadline: DateTime.UtcNow.AddMilliseconds(-1)));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.ListCollectionsAsync(cancelled.Token));
    }
}
