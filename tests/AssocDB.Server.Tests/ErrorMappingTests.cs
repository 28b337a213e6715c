using AssocDB.Engine;
using AssocDB.Engine.Model;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace AssocDB.Server.Tests;

/// <summary>
/// The one error table: every engine error code has its status code and keeps the field at fault;
/// the server's own refusals (recovering) map as documented. Over-the-wire checks of the codes the
/// engine produces are in <see cref="BadInputTests"/>.
/// </summary>
public sealed class ErrorMappingTests
{
    [Theory]
    [InlineData(ErrorCode.NotFound, StatusCode.NotFound)]
    [InlineData(ErrorCode.AlreadyExists, StatusCode.AlreadyExists)]
    [InlineData(ErrorCode.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(ErrorCode.FailedPrecondition, StatusCode.FailedPrecondition)]
    [InlineData(ErrorCode.ResourceExhausted, StatusCode.ResourceExhausted)]
    public void Engine_error_code_maps_to_its_status_code_with_the_field(ErrorCode code, StatusCode expected)
    {
        RpcException e = GrpcErrors.ToRpcException(new EngineError(code, "facts[2].tail", "is wrong"));
        Assert.Equal(expected, e.StatusCode);
        Assert.Equal("facts[2].tail: is wrong", e.Status.Detail);
        Assert.Equal("facts[2].tail", e.Trailers.GetValue(GrpcErrors.FieldTrailer));
    }

    [Fact]
    public void Every_engine_error_code_has_a_mapping()
    {
        foreach (ErrorCode code in Enum.GetValues<ErrorCode>())
        {
            Assert.NotEqual(StatusCode.Unknown, GrpcErrors.ToStatusCode(code));
        }
    }

    [Theory]
    [InlineData(ErrorCode.NotFound, StatusCode.NotFound)]
    [InlineData(ErrorCode.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(ErrorCode.FailedPrecondition, StatusCode.FailedPrecondition)]
    public void Job_that_ends_with_an_engine_error_fails_with_its_status_code_and_field(ErrorCode code, StatusCode expected)
    {
        var failure = GrpcErrors.JobFailed(new EngineError(code, "collection", "is wrong"));
        Assert.Equal((expected, "collection", "collection: is wrong"), (failure.Code, failure.Field, failure.Message));
    }

    [Fact]
    public void Job_that_ends_with_a_fault_fails_internal()
    {
        var failure = GrpcErrors.JobFault(new InvalidOperationException("the matrix is gone"));
        Assert.Equal((StatusCode.Internal, "", "the matrix is gone"), (failure.Code, failure.Field, failure.Message));
    }

    // A server whose disk is nearly full (here: one asked to keep more free than the disk has)
    // refuses writes saying so, and goes on answering reads.
    [Fact]
    public async Task A_write_past_the_free_disk_reserve_is_resource_exhausted_and_reads_go_on()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: [$"--AssocDB:MinFreeDiskBytes={long.MaxValue / 2}"]);
        await server.Client.CreateCollectionAsync("full", 4);

        var e = await Assert.ThrowsAsync<AssocDB.Client.AssocDbException>(() => server.Client.AddFactAsync("full", "a", "r", "b"));

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("MinFreeDiskBytes", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, (await server.Client.DescribeCollectionAsync("full")).FactCount);
    }

    // Count limits admit replies past the byte limit (here a recall's k = 200 hits at 4 KiB).
    // grpc-dotnet failed such a call while sending it, after the work, with "Sending message
    // exceeds the maximum configured message size", and counted it OK; it is now refused saying
    // how large the reply would be and which setting bounds it. (A search reply is cut to the
    // limit instead: see ReplyLimitTests.)
    [Fact]
    public async Task A_reply_past_the_message_limit_is_refused_saying_so()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Limits:MaxMessageBytes=4096"]);
        await server.Client.CreateCollectionAsync("big", 4);
        foreach (int[] chunk in Enumerable.Range(0, 200).Chunk(50))
        {
            await server.Client.UpsertConceptsAsync("big", chunk.Select(i =>
                new AssocDB.Protocol.V1.ConceptInput { Name = $"concept{i}", Vector = AssocDB.Client.Vectors.Of([i, 1, 0, 0]) }));
        }

        await server.Client.AddFactAsync("big", "concept0", "r", "concept1");

        var e = await Assert.ThrowsAsync<AssocDB.Client.AssocDbException>(() => server.Client.RecallAsync("big", "r", "concept0", k: 200));

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("the Recall reply would be", e.Message, StringComparison.Ordinal);
        Assert.Contains("Limits:MaxMessageBytes", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await server.Client.RecallAsync("big", "r", "concept0", k: 2)).Nearest.Count);
    }

    [Fact]
    public async Task Calls_while_recovering_are_unavailable_and_health_is_not_serving()
    {
        using var recovery = new ManualResetEventSlim();
        await using RunningServer server = await RunningServer.StartAsync(
            services: s => s.AddSingleton<DatabaseOpener>((options, logs, stopping) =>
            {
                recovery.Wait(TimeSpan.FromSeconds(30));
                return AssocDatabase.Open(options, logs, stopping);
            }),
            waitServing: false);

        var e = await Assert.ThrowsAsync<AssocDB.Client.AssocDbException>(() => server.Client.ListCollectionsAsync());
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        var health = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, health.Status);

        recovery.Set();
        await server.WaitServingAsync();
        Assert.Empty(await server.Client.ListCollectionsAsync());
    }

    // A stop asked for while a long log replays used to wait for the whole replay (recovery took no
    // token). The opener here stands for such a replay: it runs until it is cancelled, or 60 s.
    [Fact]
    public async Task Stopping_during_recovery_abandons_it_at_once()
    {
        bool cancelled = false;
        RunningServer server = await RunningServer.StartAsync(
            services: s => s.AddSingleton<DatabaseOpener>((options, logs, stopping) =>
            {
                cancelled = stopping.WaitHandle.WaitOne(TimeSpan.FromSeconds(60));
                stopping.ThrowIfCancellationRequested();
                return AssocDatabase.Open(options, logs, stopping);
            }),
            waitServing: false);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await server.DisposeAsync();

        Assert.True(cancelled, "recovery was not told to stop");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the stop took {clock.Elapsed.TotalSeconds:F1} s");
    }

    // Out of memory while opening (a large log replayed on too small a machine) escaped unobserved,
    // and the server answered UNAVAILABLE for ever. It now stops, with exit code 1, as for any fault.
    [Fact]
    public async Task Running_out_of_memory_while_opening_stops_the_server()
    {
        await using RunningServer server = await RunningServer.StartAsync(
            services: s => s.AddSingleton<DatabaseOpener>(provider => (_, _, _) =>
            {
                // Once listening, as a replay long enough to run out of memory would be.
                provider.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.WaitHandle.WaitOne(TimeSpan.FromSeconds(20));
                throw new OutOfMemoryException("replay needs more memory");
            }),
            waitServing: false);
        try
        {
            using var stopped = new SemaphoreSlim(0);
            using CancellationTokenRegistration registration = server.App.Lifetime.ApplicationStopping.Register(() => stopped.Release());
            Assert.True(await stopped.WaitAsync(TimeSpan.FromSeconds(20)), "the server kept running without its data");
            Assert.Equal(1, Environment.ExitCode);
        }
        finally
        {
            // The server sets the exit code of the process it runs in: this test host's.
            Environment.ExitCode = 0;
        }
    }
}
