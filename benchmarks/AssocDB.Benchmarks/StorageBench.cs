using System.Diagnostics;
using AssocDB.Engine;
using AssocDB.Engine.Model;

namespace AssocDB.Benchmarks;

/// <summary>
/// End-to-end storage bench for the engine foundation, in one process and one run: durable fact
/// ingestion in batches next to FASTER's raw log append rate (same entry sizes, same commit per
/// entry), graph query latency, checkpoint and reopen time, and resident memory per fact.
/// </summary>
internal static class StorageBench
{
    public static int Run(string[] args)
    {
        int facts = (int)BenchReport.LongOption(args, "--facts", 1_000_000);
        int concepts = (int)BenchReport.LongOption(args, "--concepts", 200_000);
        int batchSize = (int)BenchReport.LongOption(args, "--batch", 10_000);
        int dimension = (int)BenchReport.LongOption(args, "--dim", 64);
        string output = BenchReport.StringOption(args, "--out", Path.Combine("benchmarks", "results"));
        string folder = Path.Combine(Path.GetTempPath(), "assocdb-storage-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            return RunIn(folder, facts, concepts, batchSize, dimension, output);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static int RunIn(string folder, int factCount, int conceptCount, int batchSize, int dimension, string output)
    {
        Console.WriteLine($"storage bench: {factCount:N0} facts over {conceptCount:N0} concepts, batches of {batchSize:N0}, d = {dimension}");
        FactInput[] facts = GenerateFacts(factCount, conceptCount, relations: 50, seed: 7);
        var options = new DatabaseOptions { DataDirectory = Path.Combine(folder, "db"), Device = "cpu", CheckpointInterval = TimeSpan.Zero };

        var database = AssocDatabase.Open(options);
        database.CreateCollection(new CollectionSpec("bench", dimension));
        Collection collection = database.GetCollection("bench").Value;

        // Measured with the database open, so libtorch's own footprint is not charged to the facts.
        long baseline = ResidentBytes();
        long managedBaseline = GC.GetTotalMemory(forceFullCollection: true);

        TimeSpan cpuBefore = ProcessorTime();
        var ingest = Stopwatch.StartNew();
        long logBytes = 0;
        for (int offset = 0; offset < facts.Length; offset += batchSize)
        {
            FactInput[] batch = facts[offset..Math.Min(facts.Length, offset + batchSize)];
            Result<WriteSummary> result = collection.AddFactsAsync(batch).GetAwaiter().GetResult();
            if (!result.IsOk)
            {
                throw new InvalidOperationException(result.Error!.ToString());
            }
        }

        ingest.Stop();
        TimeSpan ingestCpu = ProcessorTime() - cpuBefore;
        logBytes = Directory.EnumerateFiles(Path.Combine(folder, "db"), "*", SearchOption.AllDirectories)
            .Where(path => path.Contains($"{Path.DirectorySeparatorChar}wal{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && !path.EndsWith(".commit", StringComparison.Ordinal))
            .Sum(path => new FileInfo(path).Length);
        double engineRate = facts.Length / ingest.Elapsed.TotalSeconds;
        int batches = (facts.Length + batchSize - 1) / batchSize;
        int entryBytes = (int)Math.Max(1, logBytes / batches);
        // Read before the raw log's run below, whose freed buffers the process may not have returned yet.
        long loaded = ResidentBytes();
        (double rawEntriesPerSecond, double rawBytesPerSecond) = BenchReport.RawLogAppendRate(Path.Combine(folder, "raw"), entryBytes, entries: Math.Max(20, batches));

        long managed = GC.GetTotalMemory(forceFullCollection: true) - managedBaseline;
        long matrixBytes = (long)collection.Describe().Value.ConceptCount * dimension * sizeof(float);
        double bytesPerFact = (loaded - baseline - matrixBytes) / (double)collection.Describe().Value.FactCount;

        var random = new Random(11);
        string[] names = Enumerable.Range(0, 100_000).Select(_ => $"c{random.Next(conceptCount)}").ToArray();
        string[] relationNames = Enumerable.Range(0, names.Length).Select(_ => $"r{random.Next(50)}").ToArray();
        Percentiles neighbors = Measure(names.Length, i => collection.Neighbors(names[i]));
        Percentiles related = Measure(names.Length, i => collection.Related(names[i], relationNames[i]));
        int maxDegree = names.Take(10_000).Max(name => collection.GetConcept(name) is { IsOk: true } found ? found.Value.Degree : 0);

        var checkpoint = Stopwatch.StartNew();
        collection.CheckpointAsync().GetAwaiter().GetResult();
        checkpoint.Stop();
        database.Dispose();

        var reopen = Stopwatch.StartNew();
        database = AssocDatabase.Open(options);
        reopen.Stop();
        long reopenedFacts = database.GetCollection("bench").Value.Describe().Value.FactCount;
        database.Dispose();

        var results = new Dictionary<string, object>
        {
            ["facts"] = reopenedFacts,
            ["concepts"] = conceptCount,
            ["batch_size"] = batchSize,
            ["dimension"] = dimension,
            ["engine_facts_per_s"] = Math.Round(engineRate),
            ["engine_facts_per_cpu_s"] = Math.Round(facts.Length / ingestCpu.TotalSeconds),
            ["load_average_1m"] = LoadAverage(),
            ["engine_log_bytes_per_s"] = Math.Round(logBytes / ingest.Elapsed.TotalSeconds),
            ["raw_log_entry_bytes"] = entryBytes,
            ["raw_log_entries_per_s"] = Math.Round(rawEntriesPerSecond, 1),
            ["raw_log_bytes_per_s"] = Math.Round(rawBytesPerSecond),
            ["raw_log_equivalent_facts_per_s"] = Math.Round(rawEntriesPerSecond * batchSize),
            ["engine_vs_raw_log"] = Math.Round(engineRate / (rawEntriesPerSecond * batchSize), 3),
            ["neighbors_p50_us"] = neighbors.P50,
            ["neighbors_p99_us"] = neighbors.P99,
            ["related_p50_us"] = related.P50,
            ["related_p99_us"] = related.P99,
            ["max_degree_sampled"] = maxDegree,
            ["checkpoint_s"] = Math.Round(checkpoint.Elapsed.TotalSeconds, 3),
            ["reopen_s"] = Math.Round(reopen.Elapsed.TotalSeconds, 3),
            ["resident_bytes_per_fact_vectors_aside"] = Math.Round(bytesPerFact, 1),
            ["managed_heap_bytes_per_fact"] = Math.Round(managed / (double)reopenedFacts, 1),
        };

        BenchReport.PrintAndWrite(results, output, "storage.json");
        return 0;
    }


    private static FactInput[] GenerateFacts(int count, int concepts, int relations, int seed)
    {
        var random = new Random(seed);
        var seen = new HashSet<(int, int, int)>();
        var facts = new FactInput[count];
        string[] conceptNames = Enumerable.Range(0, concepts).Select(i => $"c{i}").ToArray();
        string[] relationNames = Enumerable.Range(0, relations).Select(i => $"r{i}").ToArray();
        for (int i = 0; i < count;)
        {
            (int head, int relation, int tail) = (random.Next(concepts), random.Next(relations), random.Next(concepts));
            if (seen.Add((head, relation, tail)))
            {
                facts[i++] = new FactInput(conceptNames[head], relationNames[relation], conceptNames[tail]);
            }
        }

        return facts;
    }

    private readonly record struct Percentiles(double P50, double P99);

    private static Percentiles Measure(int count, Action<int> query)
    {
        for (int i = 0; i < Math.Min(count, 10_000); i++)
        {
            query(i);
        }

        var micros = new double[count];
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            query(i);
            micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(micros);
        return new Percentiles(Math.Round(micros[count / 2], 2), Math.Round(micros[count * 99 / 100], 2));
    }

    /// <summary>CPU time of this process: on a shared machine, facts per CPU-second is the figure
    /// other jobs disturb least.</summary>
    private static TimeSpan ProcessorTime()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

    private static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }


}
