using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace AssocDB.Server.Tests;

/// <summary>A server whose search batcher holds the first call of a batch for a second (the longest
/// window allowed), so a search reliably waits inside the server, and which holds a relate or a learn
/// that has a deadline until the deadline has passed before running it (a learn sent with
/// <see cref="HoldReplyHeader"/>: after running it, before its reply is written); with metrics on.</summary>
public sealed class SlowBatchServerFixture : ServerFixture
{
    /// <summary>A request header asking the server to hold the call's reply, not the call.</summary>
    public const string HoldReplyHeader = "test-hold-reply";

    protected override string[] Args => ["--metrics-port", "0", "--AssocDB:SearchBatching:MaxDelayMicroseconds=1000000"];

    protected override Action<IServiceCollection> Services =>
        services => services.Configure<GrpcServiceOptions>(grpc => grpc.Interceptors.Add<HeldPastItsDeadline>());

    /// <summary>Registered after the server's own interceptors, so it runs inside them, right before
    /// the handler. Held there, the call is on the server when its deadline passes whatever the
    /// machine's speed: a relate's proof search is bounded, and a learn's start-up (a snapshot of the
    /// collection) is short, so a fast machine ends either before any deadline short enough for a test.</summary>
    private sealed class HeldPastItsDeadline : Interceptor
    {
        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
            TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            bool held = context.Method is DeadlineTests.RelateMethod or DeadlineTests.LearnMethod && context.Deadline != DateTime.MaxValue;
            bool holdReply = held && context.RequestHeaders.Get(HoldReplyHeader) is not null;
            if (held && !holdReply)
            {
                await UntilTheDeadlineAsync(context);
            }

            TResponse response = await continuation(request, context);
            if (holdReply)
            {
                await UntilTheDeadlineAsync(context);
            }

            return response;
        }

        // The server cancels the call's token when its deadline passes.
        private static async Task UntilTheDeadlineAsync(ServerCallContext context) =>
            await Task.Delay(Timeout.InfiniteTimeSpan, context.CancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }
}

/// <summary>
/// A call that is still running on the server when its deadline passes, or when its client cancels
/// it, is abandoned there (a search waiting in its batch window, a relate whose deadline passed
/// before its proof searches ran) and answered DEADLINE_EXCEEDED or CANCELLED (not UNKNOWN), as the
/// server's own per-status call counts show; and the server keeps serving. That a proof search stops
/// mid-run once its call is cancelled is the engine's CancellationTests.
/// </summary>
public sealed class DeadlineTests(SlowBatchServerFixture fixture) : IClassFixture<SlowBatchServerFixture>, IAsyncLifetime
{
    private const string SearchMethod = "/assocdb.v1.QueryService/Search";
    internal const string RelateMethod = "/assocdb.v1.QueryService/Relate";
    internal const string LearnMethod = "/assocdb.v1.LearningService/Learn";
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
    public async Task Relate_outliving_its_deadline_is_abandoned_on_the_server()
    {
        // The fixture holds the relate until its deadline has passed, then runs it, so it must see
        // the deadline at the start of its proof search and stop there.
        // grpc-dotnet tells the client DEADLINE_EXCEEDED either way; the server's own count is the
        // real check, since a handler that ignored the deadline would finish and be counted OK.
        string graph = ServerFixture.NewCollection("deadline-relate");
        await fixture.Client.CreateCollectionAsync(graph, 4);
        await fixture.Client.DefineRelationAsync(graph, "reaches", transitive: true);
        await fixture.Client.AddFactsAsync(graph, [new FactInput { Head = "n0", Relation = "reaches", Tail = "n1" }]);

        using var channel = GrpcChannel.ForAddress(fixture.Server.Address, new GrpcChannelOptions { HttpHandler = new ServerOnlyDeadline("20m") });
        var relate = new RelateRequest { Collection = graph, A = "n0", B = "n1" };
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new QueryService.QueryServiceClient(channel).RelateAsync(relate));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal(1, await FirstNonZeroAsync($"assocdb_grpc_requests_total{{method=\"{RelateMethod}\",code=\"DeadlineExceeded\"}}"));
    }

    // The call's deadline passed while the server started the job, so the client heard
    // DEADLINE_EXCEEDED and never learnt the job's id; yet the job ran on, held the collection (the
    // next learn was refused) and would at its end have replaced every vector the client was told
    // it had not asked to train.
    [Fact]
    public Task Learn_outliving_its_deadline_leaves_no_job_running() => AbandonedLearnLeavesNoJobRunningAsync(new Metadata());

    // The same once the job had started and the handler had returned, the deadline passing before
    // the reply was written: grpc-dotnet then drops the reply and answers DEADLINE_EXCEEDED, and the
    // job, no longer tied to the call, trained on unseen.
    [Fact]
    public Task Learn_whose_deadline_passes_before_its_reply_is_written_leaves_no_job_running() =>
        AbandonedLearnLeavesNoJobRunningAsync(new Metadata { { SlowBatchServerFixture.HoldReplyHeader, "1" } });

    private async Task AbandonedLearnLeavesNoJobRunningAsync(Metadata headers)
    {
        string graph = ServerFixture.NewCollection("deadline-learn");
        await fixture.Client.CreateCollectionAsync(graph, 4);
        await fixture.Client.AddFactsAsync(graph, LearningTests.FamilyFacts());

        double learnCalls = await LearnCallsAsync();
        using var channel = GrpcChannel.ForAddress(fixture.Server.Address, new GrpcChannelOptions { HttpHandler = new ServerOnlyDeadline("1S") });
        // Trains until cancelled, were it left running.
        var endless = new LearnRequest { Collection = graph, Model = EmbeddingModel.Transe, MaxEpochs = 10_000_000, ValidationFraction = 0 };
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new LearningService.LearningServiceClient(channel).LearnAsync(endless, headers));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);

        // The client hears DEADLINE_EXCEEDED as the deadline passes, and the held handler only then
        // goes on to start the job: on a loaded machine the list was read before it had.
        await LearnAnsweredAsync(learnCalls);
        Job abandoned = Assert.Single(await fixture.Client.ListJobsAsync(graph));
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal(JobState.Cancelled, (await fixture.Client.WaitForJobAsync(abandoned.Id, cancellationToken: bound.Token)).State);
        Assert.NotEqual(RelationVectorSource.Trained, (await fixture.Client.GetRelationAsync(graph, "mother_of")).VectorSource);

        Job next = await fixture.Client.WaitForJobAsync((await fixture.Client.LearnAsync(new LearnRequest { Collection = graph, MaxEpochs = 1 })).Id);
        Assert.Equal(JobState.Succeeded, next.State);
    }

    // A write whose deadline passes may still be applied (the server does not stop a batch that
    // has reached its log), and grpc-dotnet reported the passed deadline as a bare cancellation
    // ("The operation was canceled"), which neither names the timeout nor warns of that.
    [Fact]
    public async Task Write_past_the_clients_timeout_fails_saying_its_outcome_is_unknown()
    {
        string c = ServerFixture.NewCollection("deadline-write");
        await fixture.Client.CreateCollectionAsync(c, 4);
        using var hasty = new AssocDbClient(new AssocDbClientOptions { Address = new Uri(fixture.Server.Address), Timeout = TimeSpan.FromMilliseconds(1) });
        // As many as the server takes in one call (Limits:MaxBatch): 50,000 were once sent, a batch
        // the server now refuses before parsing it, an answer that once came back as
        // RESOURCE_EXHAUSTED before the client's deadline fired.
        FactInput[] facts = [.. Enumerable.Range(0, 10_000).Select(i => new FactInput { Head = $"c{i}", Relation = "next", Tail = $"c{i + 1}" })];

        var e = await Assert.ThrowsAsync<AssocDbException>(() => hasty.AddFactsAsync(c, facts));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.StartsWith("AddFacts did not finish within 0.001 s (the client's timeout), so its outcome is unknown: a write may have been applied.", e.Message, StringComparison.Ordinal);
        Assert.Contains("ingest session", e.Message, StringComparison.Ordinal);
    }

    // A job's start past the client's timeout said that a write may have been applied and to read
    // it back, which finds no job: the job may have started (its reply on the way as the deadline
    // passed), and only ListJobs shows it.
    [Fact]
    public async Task Job_start_past_the_clients_timeout_says_where_to_look_for_the_job()
    {
        string graph = ServerFixture.NewCollection("deadline-start");
        await fixture.Client.CreateCollectionAsync(graph, 4);
        await fixture.Client.AddFactsAsync(graph, LearningTests.FamilyFacts());
        double learnCalls = await LearnCallsAsync();
        using var hasty = new AssocDbClient(new AssocDbClientOptions { Address = new Uri(fixture.Server.Address), Timeout = TimeSpan.FromMilliseconds(200) });

        // The server holds the learn until its deadline has passed, so the client's passes first.
        var e = await Assert.ThrowsAsync<AssocDbException>(() => hasty.LearnAsync(new LearnRequest { Collection = graph, MaxEpochs = 1 }));

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal("Learn did not finish within 0.2 s (the client's timeout), so its outcome is unknown: the job may have started: ListJobs on the collection shows it, to watch or cancel.", e.Message);
        // The next test counts Learn calls from a quiet server.
        await LearnAnsweredAsync(learnCalls);
    }

    private SearchRequest Search() => new() { Collection = _collection, K = 1, Queries = { Queries.Vector([1f, 0f, 0f, 0f]) } };

    private async Task<bool> SearchInFlightAsync() =>
        await FirstNonZeroAsync($"assocdb_grpc_requests_in_flight{{method=\"{SearchMethod}\"}}") > 0;

    /// <summary>The server's count of search calls answered with <paramref name="code"/>, once it has
    /// one: the client may hear the outcome before the server's call has finished unwinding.</summary>
    private Task<double> CountedAsync(string code) =>
        FirstNonZeroAsync($"assocdb_grpc_requests_total{{method=\"{SearchMethod}\",code=\"{code}\"}}");

    /// <summary>Waits (up to 10 s) until the server has finished more Learn calls than
    /// <paramref name="before"/>, whatever their status.</summary>
    private Task LearnAnsweredAsync(double before) =>
        Polling.UntilAsync(async () => await LearnCallsAsync() > before, "end of the Learn call on the server", TimeSpan.FromSeconds(10));

    /// <summary>The Learn calls the server has finished, OK, DEADLINE_EXCEEDED or CANCELLED.</summary>
    private async Task<double> LearnCallsAsync()
    {
        double calls = 0;
        foreach (string code in new[] { "OK", "DeadlineExceeded", "Cancelled" })
        {
            calls += await fixture.Server.MetricAsync($"assocdb_grpc_requests_total{{method=\"{LearnMethod}\",code=\"{code}\"}}");
        }

        return calls;
    }

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
