using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;
using AssocDB.Server.Tests.Ingestion;
using Grpc.Core;

namespace AssocDB.Server.Tests;

/// <summary>
/// A server that stops answering fails calls instead of leaving them waiting forever (the tool had
/// no deadline, and its streams none either): a call at its deadline, the tool's <c>--timeout</c>;
/// a stream, which has no deadline, once the client's keepalive ping goes unanswered.
/// </summary>
public sealed class UnresponsiveServerTests
{
    [Fact]
    public async Task Cli_call_to_a_server_that_never_answers_fails_at_its_timeout()
    {
        // Connections complete in the listener's backlog, and nothing ever reads or answers them.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        string address = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}";

        var clock = Stopwatch.StartNew();
        (int code, _, string error) = await AssocDbTool.RunAsync(["stats", "--timeout", "2s", "--server", address]);
        Assert.True(code == 1, $"assocdb exited {code}: {error}");
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(10));
        Assert.StartsWith("error: DeadlineExceeded: GetStats did not finish within 2 s (the client's timeout)", error, StringComparison.Ordinal);
    }

    // A progress query past its deadline ended the ingest at once, where a dropped connection is
    // retried: a server that stops answering for a while is as likely to come back.
    [Fact]
    public async Task Ingest_retries_a_progress_query_past_its_deadline()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        using var client = new AssocDbClient(new AssocDbClientOptions
        {
            Address = new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}"),
            Timeout = TimeSpan.FromMilliseconds(200),
        });
        var ingester = new BulkIngester(client, new BulkIngestOptions { Collection = "c", Session = "s", MaxRetries = 2, InitialBackoff = TimeSpan.FromMilliseconds(10) });

        var e = await Assert.ThrowsAsync<AssocDbException>(() => ingester.RunAsync([]));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Equal(2, ingester.Counts.Reconnects);
    }

    // The CLI's look at the collection, before the ingester's progress query, failed the run at
    // once, so a server still starting (or not answering) ended it without the retries it documents.
    [Fact]
    public async Task Ingest_retries_its_first_look_at_the_collection()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        string input = Path.Combine(Path.GetTempPath(), $"assocdb-unanswered-{Guid.NewGuid():N}.tsv");
        await File.WriteAllTextAsync(input, "a\tr\tb\n");
        try
        {
            (int code, _, string error) = await AssocDbTool.RunAsync(
                ["ingest", input, "-c", "c", "--retries", "2", "--no-progress", "--timeout", "300ms", "--server", $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}"]);

            Assert.True(code == 3, $"assocdb exited {code}: {error}");
            Assert.Equal(2, error.Split('\n').Count(line => line.StartsWith("DeadlineExceeded: ", StringComparison.Ordinal) && line.Contains("; retrying in ", StringComparison.Ordinal)));
            Assert.Contains("error: DeadlineExceeded: ", error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(input);
        }
    }

    [Fact]
    public async Task Watching_a_job_on_a_frozen_server_fails_once_a_ping_goes_unanswered()
    {
        string folder = Directory.CreateTempSubdirectory("assocdb-frozen-").FullName;
        try
        {
            await using ServerChildProcess server = await ServerChildProcess.StartAsync(ServerChildProcess.FreePort(), Path.Combine(folder, "data"));
            using var client = new AssocDbClient(server.Address);
            await client.CreateCollectionAsync("family", 8);
            await client.AddFactsAsync("family", LearningTests.FamilyFacts());
            // No validation split, so no early stopping: the job runs, and its progress streams, until the server stops.
            Job job = await client.LearnAsync(new LearnRequest { Collection = "family", Model = EmbeddingModel.Transe, MaxEpochs = 10_000_000, BatchSize = 8, ValidationFraction = 0 });

            using var watcher = new AssocDbClient(new AssocDbClientOptions
            {
                Address = new Uri(server.Address),
                KeepAlivePingDelay = TimeSpan.FromSeconds(1),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(1),
            });
            var streaming = new TaskCompletionSource();
            Task<Job> watch = watcher.WaitForJobAsync(job.Id, _ => streaming.TrySetResult());
            await streaming.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await server.FreezeAsync();

            // Well past the ping delay and timeout, short of forever.
            await Assert.ThrowsAsync<AssocDbException>(() => watch.WaitAsync(TimeSpan.FromSeconds(20)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
