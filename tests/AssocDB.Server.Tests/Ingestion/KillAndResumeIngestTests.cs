using System.Globalization;
using System.Text.Json;
using AssocDB.Cli;
using AssocDB.Client;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// Guards resumable ingestion against a real crash: the server (a child process) is SIGKILLed in
/// the middle of an ingest and started again on the same port and data folder; the CLI reconnects,
/// asks for its session's last durable batch and resumes. The final contents equal a clean ingest
/// of the same file: nothing lost, nothing applied twice (weights tell versions apart).
/// </summary>
public sealed class KillAndResumeIngestTests() : ServerProcessTests("assocdb-kill-resume-")
{
    private const int Concepts = 1500;

    [Fact]
    public async Task Sigkill_during_an_ingest_then_restart_and_resume_equals_a_clean_ingest()
    {
        string file = Path.Combine(Folder, "facts.tsv");
        WriteFacts(file, count: 60_000, seed: 20261130);
        int port = ServerChildProcess.FreePort();
        string data = Path.Combine(Folder, "data");
        Server = await ServerChildProcess.StartAsync(port, data);
        string address = Server.Address;
        using var client = new AssocDbClient(address);
        await client.CreateCollectionAsync("crashed", 8);
        await client.CreateCollectionAsync("clean", 8);

        // Small batches, so the kill lands between and inside many of them.
        Task<(int, string, string)> ingest = RunCliAsync(
            address, "ingest", file, "-c", "crashed", "--batch", "500", "--session", "s1", "--retries", $"{ServerChildProcess.RetriesAcrossARestart}");
        long before = await WaitForProgressAsync(client, "crashed", "s1", atLeast: 5_000, ingest);
        await Server.KillAsync();
        await Task.Delay(300);
        Server = await ServerChildProcess.StartAsync(port, data);

        (int code, string output, string error) = await ingest;
        Assert.True(code == 0, $"ingest exited {code}: {error}\nserver log:\n{Server.Log}");
        using JsonDocument summary = JsonDocument.Parse(output);
        Assert.True(summary.RootElement.GetProperty("reconnects").GetInt32() >= 1, "the CLI never had to reconnect: the kill came too late");
        Assert.True(before < 59_999, $"the ingest had finished ({before}) before the kill");

        (int cleanCode, _, string cleanError) = await RunCliAsync(address, "ingest", file, "-c", "clean", "--batch", "7000", "--session", "s2");
        Assert.True(cleanCode == 0, cleanError);

        await CollectionContents.AssertSameAsync(client, "clean", "crashed", Enumerable.Range(0, Concepts).Select(concept => $"c{concept}"));
    }

    /// <summary>Random facts with repeats: a repeated triple carries a new weight, so the last
    /// line wins, and a batch applied twice or out of order would leave another weight.</summary>
    private static void WriteFacts(string path, int count, int seed)
    {
        var random = new Random(seed);
        using var writer = new StreamWriter(path);
        for (int i = 0; i < count; i++)
        {
            writer.Write(string.Create(CultureInfo.InvariantCulture, $"c{random.Next(Concepts)}\tr{random.Next(12)}\tc{random.Next(Concepts)}\t{i}\n"));
        }
    }

    private static async Task<long> WaitForProgressAsync(AssocDbClient client, string collection, string session, long atLeast, Task ingest)
    {
        for (int attempt = 0; attempt < 1200 && !ingest.IsCompleted; attempt++)
        {
            long durable = await client.GetIngestProgressAsync(collection, session);
            if (durable >= atLeast)
            {
                return durable;
            }

            await Task.Delay(25);
        }

        throw new InvalidOperationException("the ingest made no progress");
    }

    private static async Task<(int, string, string)> RunCliAsync(string address, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await Task.Run(() => CliApp.RunAsync([.. args, "--json", "--no-progress", "--server", address], output, error));
        return (code, output.ToString(), error.ToString());
    }
}
