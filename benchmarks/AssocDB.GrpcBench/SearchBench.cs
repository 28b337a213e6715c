using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using AssocDB.Benchmarks;
using AssocDB.Client;
using AssocDB.Engine;
using AssocDB.Engine.Model;
using P = AssocDB.Protocol.V1;

namespace AssocDB.GrpcBench;

/// <summary>
/// The end-to-end search bench, in one run over one data folder: seeded unit vectors are stored
/// through the engine, whose batched search gives the ceiling (in-process, no network); then the
/// real server recovers the folder and is loaded over loopback gRPC by 1, 16 and 64 clients, and once
/// more by 64 clients with micro-batching off; then the ceiling is measured again, and the targets use
/// the mean of the two. Prints tables, checks issue 4's targets and writes JSON.
/// </summary>
internal static class SearchBench
{
    private const string CollectionName = "bench";

    /// <summary>Queries in the pool that every run draws from, in turn.</summary>
    private const int QueryPool = 4096;

    /// <summary>Queries whose server answers are compared with the engine's.</summary>
    private const int CheckedQueries = 64;

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static async Task<int> RunAsync(BenchSettings settings, string commandLine)
    {
        if (settings.TorchThreads > 0)
        {
            // libtorch's OpenMP pool spins at barriers; on a box shared with other work one thread can beat two.
            TorchSharp.torch.set_num_threads(settings.TorchThreads);
        }

        string folder = Path.Combine(Path.GetTempPath(), "assocdb-grpc-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            return await RunInAsync(settings, commandLine, folder);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    private static async Task<int> RunInAsync(BenchSettings settings, string commandLine, string folder)
    {
        string loadBefore = MachineLoad.LoadAverage();
        int d = settings.Dimension;
        Console.WriteLine($"gRPC search bench: n = {settings.Concepts:N0}, d = {d}, k = {settings.K}, cores = {Environment.ProcessorCount}, "
            + $"torch threads = {TorchSharp.torch.get_num_threads()}, load average {loadBefore}");
        float[] vectors = BenchData.UnitVectors(settings.Concepts, d, seed: 42);
        float[] queryData = BenchData.UnitVectors(QueryPool, d, seed: 7);
        SearchQuery[] engineQueries = [.. Enumerable.Range(0, QueryPool).Select(i => new SearchQuery(queryData[(i * d)..((i + 1) * d)]))];
        P.SearchQuery[] wireQueries = [.. engineQueries.Select(q => Queries.Vector(q.Vector!))];

        double ingestSeconds;
        List<InProcessRun> before;
        string[][] expected;
        var databaseOptions = new DatabaseOptions { DataDirectory = folder, Device = "cpu", CheckpointInterval = TimeSpan.Zero };
        await using (var database = AssocDatabase.Open(databaseOptions))
        {
            ingestSeconds = Ingest(database, vectors, d);
            Console.WriteLine($"stored {settings.Concepts:N0} concepts in {ingestSeconds:F1} s");
            Collection collection = database.GetCollection(CollectionName).Value;
            before = MeasureInProcess(collection, "before the gRPC runs", settings, engineQueries);
            expected = InProcessRun.TopNames(collection, engineQueries[..CheckedQueries], settings.K);
        }

        var grpc = new List<GrpcRun>();
        List<PairedRound> paired = [];
        int agreeing;
        Console.WriteLine($"\nloopback gRPC, single-query Search calls, channel {(settings.ChannelPerClient ? "one per client" : "shared")}, "
            + $"{settings.WarmupSeconds} s warm-up + {settings.DurationSeconds} s measured per run:");
        Console.WriteLine("| run | QPS | p50 ms | p99 ms | p99/p50 | mean batch | CPU % | max pool threads | load average |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        await using (HostedServer server = await HostedServer.StartAsync(folder, batching: true, settings.ServerOptions))
        {
            agreeing = await AgreeingAsync(server, wireQueries[..CheckedQueries], expected, settings.K);
            foreach (int clients in settings.Clients)
            {
                grpc.Add(await MeasureAndPrintAsync(server, batching: true, clients, settings, wireQueries));
            }

            if (settings.PairedRounds > 0)
            {
                paired = await MeasurePairedAsync(server, settings, engineQueries, wireQueries);
            }
        }

        if (settings.UnbatchedClients > 0)
        {
            await using HostedServer server = await HostedServer.StartAsync(folder, batching: false, settings.ServerOptions);
            grpc.Add(await MeasureAndPrintAsync(server, batching: false, settings.UnbatchedClients, settings, wireQueries));
        }

        // Measured again after the gRPC runs, and the two averaged: the machine's speed drifts over
        // the minutes between, and a ratio of two measurements taken at different times carries it.
        List<InProcessRun> after;
        await using (var database = AssocDatabase.Open(databaseOptions))
        {
            after = MeasureInProcess(database.GetCollection(CollectionName).Value, "after the gRPC runs", settings, engineQueries);
        }

        List<InProcessRun> inProcess = [.. before.Zip(after, (b, a) => b with { QueriesPerSecond = (b.QueriesPerSecond + a.QueriesPerSecond) / 2 })];
        Console.WriteLine(string.Create(Invariant, $"\nin-process QPS, mean of before and after: {string.Join(", ", inProcess.Select(r => $"batch {r.Batch} {r.QueriesPerSecond:N0}"))}"));
        Console.WriteLine($"\nserver answers identical to the engine's (top-{settings.K} names, {CheckedQueries} concurrent calls): {agreeing} of {CheckedQueries}");
        Dictionary<string, object?> targets = Targets(inProcess, grpc, paired);
        foreach ((string name, object? value) in targets)
        {
            Console.WriteLine($"{name}: {Convert.ToString(value, Invariant)}");
        }

        var result = new Dictionary<string, object?>
        {
            ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", Invariant),
            ["command"] = commandLine,
            ["cores"] = Environment.ProcessorCount,
            ["load_average_start"] = loadBefore,
            ["load_average_end"] = MachineLoad.LoadAverage(),
            ["concepts"] = settings.Concepts,
            ["dimension"] = d,
            ["k"] = settings.K,
            ["torch_threads"] = TorchSharp.torch.get_num_threads(),
            ["channel"] = settings.ChannelPerClient ? "one per client" : "shared",
            ["server_options"] = settings.ServerOptions,
            ["warmup_s"] = settings.WarmupSeconds,
            ["duration_s"] = settings.DurationSeconds,
            ["ingest_s"] = Math.Round(ingestSeconds, 2),
            ["in_process_before"] = before,
            ["in_process_after"] = after,
            ["grpc"] = grpc,
            ["paired_rounds"] = paired,
            ["answers_identical"] = $"{agreeing}/{CheckedQueries}",
            ["targets"] = targets,
        };
        string? directory = Path.GetDirectoryName(settings.JsonPath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        await File.WriteAllTextAsync(settings.JsonPath, JsonSerializer.Serialize(result, new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        }));
        Console.WriteLine($"\nwrote {settings.JsonPath}");
        return agreeing == CheckedQueries ? 0 : 1;
    }

    private static List<InProcessRun> MeasureInProcess(Collection collection, string when, BenchSettings settings, SearchQuery[] queries)
    {
        Console.WriteLine($"\nin-process Collection.Search {when}, {settings.InProcessSeconds} s per batch size:");
        Console.WriteLine("| batch | calls | QPS | call p50 ms | call p99 ms |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        var runs = new List<InProcessRun>();
        foreach (int batch in settings.Batches)
        {
            InProcessRun run = InProcessRun.Measure(collection, queries, batch, settings.K, TimeSpan.FromSeconds(settings.InProcessSeconds));
            runs.Add(run);
            Console.WriteLine(string.Create(Invariant, $"| {run.Batch} | {run.Calls:N0} | {run.QueriesPerSecond:N0} | {run.CallP50Ms:F2} | {run.CallP99Ms:F2} |"));
        }

        return runs;
    }

    /// <summary>Creates the collection and stores the vectors as concepts c0…c(n−1), in batches
    /// that fit one write-ahead log page; returns the seconds taken.</summary>
    private static double Ingest(AssocDatabase database, float[] vectors, int d)
    {
        const int Batch = 10_000;
        // Value throws, with the engine's error, when a result is not Ok.
        _ = database.CreateCollection(new CollectionSpec(CollectionName, d)).Value;
        Collection collection = database.GetCollection(CollectionName).Value;
        int count = vectors.Length / d;
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < count; start += Batch)
        {
            ConceptInput[] batch =
            [
                .. Enumerable.Range(start, Math.Min(Batch, count - start))
                    .Select(i => new ConceptInput("c" + i.ToString(Invariant), vectors[(i * d)..((i + 1) * d)])),
            ];
            _ = collection.UpsertConceptsAsync(batch).GetAwaiter().GetResult().Value;
        }

        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>How many of <paramref name="queries"/>, sent as concurrent single-query calls (so the
    /// batcher coalesces them), come back with the engine's top-k names in the engine's order.</summary>
    private static async Task<int> AgreeingAsync(HostedServer server, P.SearchQuery[] queries, string[][] expected, int k)
    {
        using var client = new AssocDbClient(new AssocDbClientOptions { Address = server.Address, Timeout = TimeSpan.FromMinutes(1) });
        IReadOnlyList<P.SearchHit>[] answers = await Task.WhenAll(queries.Select(q => client.SearchAsync(CollectionName, q, k)));
        return answers.Where((hits, i) => hits.Select(h => h.Concept).SequenceEqual(expected[i])).Count();
    }

    /// <summary>Rounds of the largest in-process batch on the hosted server's own collection (the
    /// server idle) and the most concurrent gRPC load, each round's ratio taken between its two halves:
    /// this machine's speed changes by a quarter within a minute, so that a ratio of runs taken
    /// minutes apart carries the change, where one of runs seconds apart mostly does not. The halves
    /// alternate which goes first, so a steady drift does not favour either.</summary>
    private static async Task<List<PairedRound>> MeasurePairedAsync(
        HostedServer server, BenchSettings settings, SearchQuery[] engineQueries, P.SearchQuery[] wireQueries)
    {
        int batch = settings.Batches.Max(), clients = settings.Clients.Max();
        Collection collection = server.Collection(CollectionName);
        var half = TimeSpan.FromSeconds(settings.PairedSeconds);
        Console.WriteLine($"\npaired rounds: in-process batch {batch} on the server's collection and gRPC with {clients} clients, {settings.PairedSeconds} s each:");
        Console.WriteLine("| round | first | in-process QPS | gRPC QPS | ratio | mean batch |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|");
        var rounds = new List<PairedRound>();
        for (int round = 1; round <= settings.PairedRounds; round++)
        {
            bool inProcessFirst = round % 2 == 1;
            InProcessRun? engine = inProcessFirst ? InProcessRun.Measure(collection, engineQueries, batch, settings.K, half) : null;
            GrpcRun wire = await GrpcRun.MeasureAsync(
                server, batching: true, clients, settings.ChannelPerClient, CollectionName, wireQueries, settings.K, TimeSpan.FromSeconds(1), half);
            engine ??= InProcessRun.Measure(collection, engineQueries, batch, settings.K, half);
            var paired = new PairedRound(round, inProcessFirst ? "in-process" : "gRPC", engine.QueriesPerSecond, wire.QueriesPerSecond, wire.QueriesPerSecond / engine.QueriesPerSecond, wire.MeanBatch);
            rounds.Add(paired);
            Console.WriteLine(string.Create(Invariant,
                $"| {round} | {paired.First} | {paired.InProcessQps:N0} | {paired.GrpcQps:N0} | {paired.Ratio:F2} | {paired.MeanBatch:F1} |"));
        }

        return rounds;
    }

    private static async Task<GrpcRun> MeasureAndPrintAsync(HostedServer server, bool batching, int clients, BenchSettings settings, P.SearchQuery[] queries)
    {
        GrpcRun run = await GrpcRun.MeasureAsync(
            server, batching, clients, settings.ChannelPerClient, CollectionName, queries, settings.K,
            TimeSpan.FromSeconds(settings.WarmupSeconds), TimeSpan.FromSeconds(settings.DurationSeconds));
        Console.WriteLine(string.Create(Invariant,
            $"| {run.Label} | {run.QueriesPerSecond:N0} | {run.Latency.P50Ms:F2} | {run.Latency.P99Ms:F2} | {run.Latency.P99Ms / run.Latency.P50Ms:F1} | {run.MeanBatch:F1} | {run.CpuPercent:F0} | {run.MaxThreadPoolThreads} | {run.LoadAverage} |"));
        return run;
    }

    /// <summary>Issue 4's targets: the most concurrent batched run reaches half the best in-process
    /// batched throughput (over the whole run, and per paired round), and every gRPC run keeps p99
    /// within 10 × p50. Beside the first, the ratio
    /// to the engine at the clients' own concurrency (n single-query clients never have more than n
    /// queries outstanding), when that batch was run.</summary>
    private static Dictionary<string, object?> Targets(List<InProcessRun> inProcess, List<GrpcRun> grpc, List<PairedRound> paired)
    {
        var targets = new Dictionary<string, object?>();
        InProcessRun? ceiling = inProcess.Where(r => r.Batch > 1).MaxBy(r => r.QueriesPerSecond);
        GrpcRun? busiest = grpc.Where(r => r.Batching).MaxBy(r => r.Clients);
        if (ceiling is not null && busiest is not null)
        {
            double ratio = busiest.QueriesPerSecond / ceiling.QueriesPerSecond;
            targets[$"{busiest.Clients}-client QPS / in-process batch-{ceiling.Batch} QPS (target >= 0.5)"] =
                $"{ratio:F2} {(ratio >= 0.5 ? "met" : "missed")}";
            if (inProcess.FirstOrDefault(r => r.Batch == busiest.Clients) is { } sameConcurrency && sameConcurrency != ceiling)
            {
                targets[$"{busiest.Clients}-client QPS / in-process batch-{sameConcurrency.Batch} QPS (same concurrency)"] =
                    $"{busiest.QueriesPerSecond / sameConcurrency.QueriesPerSecond:F2}";
            }
        }

        if (paired.Count > 0)
        {
            double[] ratios = [.. paired.Select(r => r.Ratio).Order()];
            double median = BenchData.Median(ratios);
            targets[$"paired rounds, gRPC QPS / in-process QPS, median of {ratios.Length} (target >= 0.5)"] =
                string.Create(Invariant, $"{median:F2} {(median >= 0.5 ? "met" : "missed")} (rounds {ratios[0]:F2}-{ratios[^1]:F2})");
        }

        GrpcRun? unbatched = grpc.FirstOrDefault(r => !r.Batching);
        GrpcRun? sameLoad = unbatched is null ? null : grpc.FirstOrDefault(r => r.Batching && r.Clients == unbatched.Clients);
        if (unbatched is not null && sameLoad is not null)
        {
            targets[$"batching gain at {unbatched.Clients} clients (QPS on / off)"] = $"{sameLoad.QueriesPerSecond / unbatched.QueriesPerSecond:F2}x";
        }

        foreach (GrpcRun run in grpc)
        {
            double ratio = run.Latency.P99Ms / run.Latency.P50Ms;
            targets[$"{run.Label}: p99/p50 (target <= 10)"] = $"{ratio:F1} {(ratio <= 10 ? "met" : "missed")}";
        }

        return targets;
    }
}
