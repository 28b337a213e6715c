using System.Text.Json;
using AssocDB.Protocol.V1;

namespace AssocDB.Server.Tests;

/// <summary>
/// Ctrl+C on a real <c>assocdb</c> process: a watched learning job is cancelled on the server (the
/// process used to end at once and leave it running), so is one whose starting call was still in
/// flight, and an ingest writes its rejects and summary
/// before it exits (both were lost) and resumes from where it stopped.
/// </summary>
public sealed class CliSignalTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Ctrl_c_on_a_watched_learn_cancels_its_job()
    {
        string c = ServerFixture.NewCollection("sigint-learn");
        await fixture.Client.CreateCollectionAsync(c, 8);
        await fixture.Client.AddFactsAsync(c, LearningTests.FamilyFacts());

        // No validation split, so no early stopping: the job runs until cancelled.
        await using var cli = CliProcess.Start(
            "learn", "-c", c, "--model", "transe", "--epochs", "10000000", "--batch", "8", "--validation-fraction", "0", "--server", fixture.Server.Address);
        await cli.WaitForErrorAsync("epoch "); // the progress bar: the job runs and the tool watches it
        await cli.InterruptAsync();

        (int code, _) = await cli.ExitAsync();
        Job job = Assert.Single(await fixture.Client.ListJobsAsync(c));
        Assert.True(code == 130, $"assocdb exited {code}: {cli.Error}");
        Assert.True(cli.Error.Contains($"cancelling job {job.Id}", StringComparison.Ordinal), cli.Error);
        Job ended = await fixture.Client.WaitForJobAsync(job.Id).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(JobState.Cancelled, ended.State);
    }

    // Ctrl+C abandoned the Learn call itself: when the server had already started the job and its
    // answer was on the way, the tool exited without the job's id and the job trained on unseen.
    [Fact]
    public async Task Ctrl_c_while_the_learn_call_is_in_flight_cancels_the_job_it_started()
    {
        string c = ServerFixture.NewCollection("sigint-starting");
        await fixture.Client.CreateCollectionAsync(c, 8);
        await fixture.Client.AddFactsAsync(c, LearningTests.FamilyFacts());

        await using var relay = new HeldReplyRelay(fixture.Server.Address);
        await using var cli = CliProcess.Start(
            "learn", "-c", c, "--model", "transe", "--epochs", "10000000", "--batch", "8", "--validation-fraction", "0", "--server", relay.Address);
        // The server has started the job and answered; the answer is held on its way to the tool.
        await cli.WaitUntilAsync(async () => (await fixture.Client.ListJobsAsync(c)).Count == 1, "starting a job");
        await cli.InterruptAsync();
        await cli.WaitUntilAsync(() => Task.FromResult(cli.HasExited || cli.Error.Contains("interrupted: waiting", StringComparison.Ordinal)), "taking the interrupt");
        relay.Release();

        (int code, _) = await cli.ExitAsync();
        Job job = Assert.Single(await fixture.Client.ListJobsAsync(c));
        Assert.True(code == 130, $"assocdb exited {code}: {cli.Error}");
        Assert.True(cli.Error.Contains($"cancelling job {job.Id}", StringComparison.Ordinal), cli.Error);
        Job ended = await fixture.Client.WaitForJobAsync(job.Id).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(JobState.Cancelled, ended.State);
    }

    // Ctrl+C while the ingest's first call (describing the collection) was unanswered left the
    // tool's handler by an exception it did not catch: exit 1, the code of a bad command line, and
    // nothing said.
    [Fact]
    public async Task Ctrl_c_before_an_ingest_sends_anything_exits_as_interrupted()
    {
        string c = ServerFixture.NewCollection("sigint-early");
        await fixture.Client.CreateCollectionAsync(c, 4);
        string file = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(file, ["a\tr\tb"]);
            await using var relay = new HeldReplyRelay(fixture.Server.Address);
            await using var cli = CliProcess.Start("ingest", file, "-c", c, "--format", "tsv", "--no-progress", "--server", relay.Address);
            await relay.Connected.WaitAsync(TimeSpan.FromSeconds(30));
            await cli.InterruptAsync();

            (int code, _) = await cli.ExitAsync();
            Assert.True(code == 130, $"assocdb exited {code}: {cli.Error}");
            Assert.Contains("interrupted", cli.Error, StringComparison.Ordinal);
            Assert.Equal(0, (await fixture.Client.DescribeCollectionAsync(c)).FactCount);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Ctrl_c_on_an_ingest_writes_its_rejects_and_summary_and_the_session_resumes()
    {
        const int Facts = 200_000;
        string c = ServerFixture.NewCollection("sigint-ingest");
        await fixture.Client.CreateCollectionAsync(c, 4);
        string folder = Directory.CreateTempSubdirectory("assocdb-sigint-").FullName;
        try
        {
            string file = Path.Combine(folder, "facts.tsv");
            string rejects = Path.Combine(folder, "rejects.tsv");
            await File.WriteAllLinesAsync(file, ["not a fact", .. Enumerable.Range(0, Facts).Select(i => $"c{i}\tnext\tc{i + 1}")]);

            // Small batches, so the ingest is far from done when it is interrupted.
            await using (var cli = CliProcess.Start(
                "ingest", file, "-c", c, "--batch", "100", "--session", "s1", "--rejects", rejects, "--json", "--no-progress", "--server", fixture.Server.Address))
            {
                // The summary counts the batches whose acknowledgements the tool has read, and it sends
                // at most 4 batches (--in-flight's default) past those: once 2,000 items are durable,
                // it has read the acknowledgements of at least the first 1,000.
                await cli.WaitUntilAsync(async () => await fixture.Client.GetIngestProgressAsync(c, "s1") >= 2000, "storing 2000 facts");

                await cli.InterruptAsync();
                (int code, string output) = await cli.ExitAsync();
                Assert.True(code == 130, $"assocdb exited {code}: {cli.Error}"); // ingest's code for an interrupted run
                Assert.Contains("interrupted (rerun with --session s1 to resume)", cli.Error, StringComparison.Ordinal);
                using JsonDocument summary = JsonDocument.Parse(output);
                Assert.Equal(1, summary.RootElement.GetProperty("rejected").GetInt64());
                long stored = summary.RootElement.GetProperty("stored").GetInt64();
                Assert.InRange(stored, 1000, Facts - 1);
                Assert.True((await fixture.Client.DescribeCollectionAsync(c)).FactCount >= stored);
                Assert.StartsWith($"{file}:1\t", Assert.Single(await File.ReadAllLinesAsync(rejects)), StringComparison.Ordinal);
            }

            (int resumed, string rest, string error) = await AssocDbTool.RunAsync(["ingest", file, "-c", c, "--session", "s1", "--json", "--no-progress", "--server", fixture.Server.Address]);
            Assert.True(resumed == 0, error);
            using JsonDocument resumedSummary = JsonDocument.Parse(rest);
            Assert.True(resumedSummary.RootElement.GetProperty("resumed").GetInt64() >= 1000);
            Assert.Equal(Facts, (await fixture.Client.DescribeCollectionAsync(c)).FactCount);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
