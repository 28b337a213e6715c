using System.Net.Http.Headers;
using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace AssocDB.Server.Tests;

/// <summary>Standard tools work against the server: gRPC health, server reflection, and Prometheus
/// metrics over HTTP/1.1 with per-method call counts and the stored data's size; and a graceful
/// stop leaves a checkpoint, so the next start has no log to replay.</summary>
public sealed class ObservabilityTests
{
    [Fact]
    public async Task Health_reflection_and_metrics_answer()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--metrics-port", "0"]);
        var health = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);

        var reflection = new ServerReflection.ServerReflectionClient(server.Channel).ServerReflectionInfo();
        await reflection.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await reflection.RequestStream.CompleteAsync();
        Assert.True(await reflection.ResponseStream.MoveNext(CancellationToken.None));
        var services = reflection.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("assocdb.v1.QueryService", services);
        Assert.Contains("assocdb.v1.FactService", services);
        Assert.Contains("assocdb.v1.ConceptService", services);
        Assert.Contains("assocdb.v1.AdminService", services);

        await server.Client.CreateCollectionAsync("metrics", 8);
        await server.Client.AddFactAsync("metrics", "a", "r", "b");
        string text = await server.ScrapeMetricsAsync();
        Assert.Contains("assocdb_grpc_requests_total{method=\"/assocdb.v1.FactService/AddFacts\",code=\"OK\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("assocdb_grpc_request_duration_seconds_count{method=\"/assocdb.v1.FactService/AddFacts\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("assocdb_facts_stored 1", text, StringComparison.Ordinal);
        Assert.Contains("assocdb_matrix_bytes 64", text, StringComparison.Ordinal);
    }

    // grpc-dotnet refuses a request over the message limit before the interceptors run, so the
    // refusal was counted nowhere: a client sending too much never showed among failed calls.
    [Fact]
    public async Task Requests_refused_for_their_size_are_counted_with_their_method_and_status()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--metrics-port", "0", "--AssocDB:Limits:MaxMessageBytes=4096"]);
        await server.Client.CreateCollectionAsync("sized", 4);
        var oversized = new SearchRequest { Collection = "sized", Queries = { new SearchQuery { Concept = new string('x', 5000) } } };

        var e = await Assert.ThrowsAsync<RpcException>(() => server.Client.Query.SearchAsync(oversized).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        string text = await server.ScrapeMetricsAsync();
        Assert.Contains("assocdb_grpc_requests_total{method=\"/assocdb.v1.QueryService/Search\",code=\"ResourceExhausted\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("assocdb_grpc_request_duration_seconds_count{method=\"/assocdb.v1.QueryService/Search\"} 1", text, StringComparison.Ordinal);
        // Calls the interceptor counted are counted once.
        Assert.Contains("assocdb_grpc_requests_total{method=\"/assocdb.v1.CollectionService/CreateCollection\",code=\"OK\"} 1", text, StringComparison.Ordinal);
    }

    /// <summary>Routing matches a method's path ignoring case: such calls count under the method's
    /// own name (a label per spelling grew the metrics without bound, from callers the key check
    /// refused too), and the health service is open in every spelling.</summary>
    [Fact]
    public async Task Calls_are_labelled_and_authorized_by_the_method_they_reach()
    {
        const string key = "metrics-key";
        await using RunningServer server = await RunningServer.StartAsync(key, extraArgs: ["--metrics-port", "0"]);
        CallInvoker bare = server.Channel.CreateCallInvoker();
        var raw = Marshallers.Create<byte[]>(bytes => bytes, bytes => bytes);
        var shouted = new Method<byte[], byte[]>(MethodType.Unary, "ASSOCDB.V1.ADMINSERVICE", "GETSTATS", raw, raw);
        var refused = await Assert.ThrowsAsync<RpcException>(() => bare.AsyncUnaryCall(shouted, null, new CallOptions(), []).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);

        var health = new Method<byte[], byte[]>(MethodType.Unary, "GRPC.HEALTH.V1.HEALTH", "Check", raw, raw);
        byte[] answer = await bare.AsyncUnaryCall(health, null, new CallOptions(), []).ResponseAsync;
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, HealthCheckResponse.Parser.ParseFrom(answer).Status);

        using var http = new HttpClient { DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };
        const string RefusedCount = "assocdb_grpc_requests_total{method=\"/assocdb.v1.AdminService/GetStats\",code=\"Unauthenticated\"} 1";
        const string HealthCount = "assocdb_grpc_requests_total{method=\"/grpc.health.v1.Health/Check\",code=\"OK\"}";
        // A call is counted once its handler has returned, which may be after its client has the answer.
        string text = "";
        await Polling.UntilAsync(
            async () => (text = await http.GetStringAsync(new Uri(new Uri(server.MetricsAddress!), "/metrics"))).Contains(RefusedCount, StringComparison.Ordinal)
                && text.Contains(HealthCount, StringComparison.Ordinal),
            "count of both calls",
            TimeSpan.FromSeconds(10));

        Assert.Contains(RefusedCount, text, StringComparison.Ordinal);
        Assert.Contains(HealthCount, text, StringComparison.Ordinal);
        Assert.DoesNotContain("ASSOCDB", text, StringComparison.Ordinal);
        Assert.DoesNotContain("GRPC.HEALTH", text, StringComparison.Ordinal);
    }

    // Also when a client keeps a stream open through shutdown: Kestrel then waits out the host's
    // shutdown timeout, and the checkpoint used to start on that expired token, be skipped, and
    // end the shutdown with an exception.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Graceful_shutdown_checkpoints_so_the_next_start_replays_no_log(bool streamLeftOpen)
    {
        // Every write would survive without the checkpoint too (the next start replays the log),
        // so what shows the checkpoint is the engine's report of how much log its recovery replayed.
        var logs = new CapturedLogs();
        string data = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        AssocDbClient? bystander = null; // its own connection, open until after the server stopped
        try
        {
            await using (RunningServer first = await RunningServer.StartAsync(
                dataDirectory: data, services: s => s.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1))))
            {
                await first.Client.CreateCollectionAsync("kept", 4);
                await first.Client.DefineRelationAsync("kept", "mother_of", inverseOf: "child_of");
                await first.Client.AddFactAsync("kept", "A", "mother_of", "B");
                if (streamLeftOpen)
                {
                    bystander = new AssocDbClient(first.Address);
                    AsyncDuplexStreamingCall<IngestRequest, IngestAck> idle = bystander.Ingest.Ingest();
                    await idle.RequestStream.WriteAsync(new IngestRequest { Collection = "kept", Session = "s", Sequence = 0, Facts = { new FactInput { Head = "C", Relation = "mother_of", Tail = "D" } } });
                    Assert.True(await idle.ResponseStream.MoveNext(CancellationToken.None));
                }
            }

            await using RunningServer second = await RunningServer.StartAsync(dataDirectory: data, services: s => s.AddSingleton<ILoggerProvider>(logs));
            Answer answer = Assert.Single((await second.Client.RelatedAsync("kept", "B", "child_of")).Answers);
            Assert.Equal("A", answer.Concept);
            CapturedLogs.LogEvent recovered = Assert.Single(logs.Events, e => e.Name == "CollectionRecovered");
            Assert.Equal("kept", recovered.Fields["Collection"]);
            Assert.Equal(0, recovered.Fields["Replayed"]);
        }
        finally
        {
            bystander?.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }
}
