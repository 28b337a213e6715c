using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace AssocDB.Server.Tests;

/// <summary>A server whose search batcher holds the first call of a batch for a second (the longest
/// window allowed), so a search reliably waits inside the server; with metrics on.</summary>
public sealed class SlowBatchServerFixture : ServerFixture
{
    protected override string[] Args => ["--metrics-port", "0", "--AssocDB:SearchBatching:MaxDelayMicroseconds=1000000"];
}

/// <summary>
/// A call that is still running on the server when its deadline passes, or when its client cancels
/// it, is abandoned there (a search waiting in its batch window, a relate in the middle of its proof
/// searches) and answered DEADLINE_EXCEEDED or CANCELLED (not UNKNOWN), as the server's own
/// per-status call counts show; and the server keeps serving.
/// </summary>
public sealed class DeadlineTests(SlowBatchServerFixture fixture) : IClassFixture<SlowBatchServerFixture>, IAsyncLifetime
{
    private const string SearchMethod = "/assocdb.v1.QueryService/Search";
    private const string RelateMethod = "/assocdb.v1.QueryService/Relate";
    private readonly string _collection = ServerFixture.NewCollection("deadline");

    public async Task InitializeAsync()
    {
        await fixture.Client.CreateCollectionAsync(_collection, 4);
        await fixture.Client.UpsertConceptsAsync(_collection, [new ConceptInput { Name = "a", Vector = Vectors.Of([1f, 0f, 0f, 0f]) }]);
    }

    // The server still answers a search after the abandoned one.
    public async Task DisposeAsync() => Assert.Equal("a", Assert.Single(await fixture.Client.SearchAsync(_collection, Queries.Vector([1f, 0f, 0f, 0f]), 1)).Concept);

    [Fact]
    public async Task Search_outliving_its_deadline_on_the_server_is_answered_deadline_exceeded()
    {
        using var channel = GrpcChannel.ForAddress(fixture.Server.Address, new GrpcChannelOptions { HttpHandler = new ServerOnlyDeadline("100m") });
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new QueryService.QueryServiceClient(channel).SearchAsync(Search()));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal(1, await CountedAsync("DeadlineExceeded"));
    }

    [Fact]
    public async Task Search_cancelled_by_its_client_is_abandoned_on_the_server_as_cancelled()
    {
        // Cancelled once the server reports the call in flight (held in its batch window), so
        // neither a slow start nor a late cancel on a loaded machine changes what is tested.
        using var cancel = new CancellationTokenSource();
        using AsyncUnaryCall<SearchResponse> call = new QueryService.QueryServiceClient(fixture.Server.Channel).SearchAsync(Search(), cancellationToken: cancel.Token);
        Assert.True(await SearchInFlightAsync(), "the search never reached the server");
        await cancel.CancelAsync();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await call);
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        Assert.Equal(1, await CountedAsync("Cancelled"));
    }

    [Fact]
    public async Task Relate_outliving_its_deadline_is_abandoned_mid_run_on_the_server()
    {
        // A transitive relation on a DAG where each node reaches the next 8, and 40 relations composed
        // from it: relate's proof searches explode to the work bound they share, which takes about a
        // tenth of a second, so the deadline passes while they run.
        // grpc-dotnet tells the client DEADLINE_EXCEEDED either way; the server's own count is the
        // real check, since a handler that ignored the deadline would finish and be counted OK.
        string graph = ServerFixture.NewCollection("deadline-relate");
        await fixture.Client.CreateCollectionAsync(graph, 4);
        await fixture.Client.DefineRelationAsync(graph, "reaches", transitive: true);
        for (int i = 0; i < 40; i++)
        {
            await fixture.Client.DefineRelationAsync(graph, $"via_{i}", compositions: [("reaches", "reaches")]);
        }

        await fixture.Client.AddFactsAsync(graph, Enumerable.Range(0, 300).SelectMany(node => Enumerable.Range(1, 8)
            .Where(step => node + step < 300)
            .Select(step => new FactInput { Head = $"n{node}", Relation = "reaches", Tail = $"n{node + step}" })));

        using var channel = GrpcChannel.ForAddress(fixture.Server.Address, new GrpcChannelOptions { HttpHandler = new ServerOnlyDeadline("20m") });
        var relate = new RelateRequest { Collection = graph, A = "n0", B = "n299", MaxDepth = 8 };
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new QueryService.QueryServiceClient(channel).RelateAsync(relate));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal(1, await FirstNonZeroAsync($"assocdb_grpc_requests_total{{method=\"{RelateMethod}\",code=\"DeadlineExceeded\"}}"));
    }

    private SearchRequest Search() => new() { Collection = _collection, K = 1, Queries = { Queries.Vector([1f, 0f, 0f, 0f]) } };

    private async Task<bool> SearchInFlightAsync() =>
        await FirstNonZeroAsync($"assocdb_grpc_requests_in_flight{{method=\"{SearchMethod}\"}}") > 0;

    /// <summary>The server's count of search calls answered with <paramref name="code"/>, once it has
    /// one: the client may hear the outcome before the server's call has finished unwinding.</summary>
    private Task<double> CountedAsync(string code) =>
        FirstNonZeroAsync($"assocdb_grpc_requests_total{{method=\"{SearchMethod}\",code=\"{code}\"}}");

    /// <summary>Polls a metric series for up to 5 s; its first non-zero value, or 0.</summary>
    private async Task<double> FirstNonZeroAsync(string series)
    {
        for (int attempt = 0; attempt < 250; attempt++)
        {
            double value = await fixture.Server.MetricAsync(series);
            if (value > 0)
            {
                return value;
            }

            await Task.Delay(20);
        }

        return 0;
    }

    /// <summary>Sends each call's deadline as its grpc-timeout header without giving the client the
    /// deadline (grpc-dotnet drops the header from call metadata and would time the call out itself,
    /// racing the server): the client waits for the server's answer, so the status it hears, and the
    /// one the server counts, is what the server decided.</summary>
    private sealed class ServerOnlyDeadline(string timeout) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("grpc-timeout", timeout);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
