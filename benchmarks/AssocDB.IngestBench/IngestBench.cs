using System.Diagnostics;
using System.Text;
using AssocDB.Benchmarks;
using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Engine;
using E = AssocDB.Engine.Model;
using P = AssocDB.Protocol.V1;

namespace AssocDB.IngestBench;

/// <summary>
/// Ingestion, end to end and below, in one run on one machine:
/// <list type="number">
/// <item>FASTER's raw log append rate: entries the size of the engine's ingest entries, each
/// committed before the next (the durability floor every layer above pays);</item>
/// <item>the engine's in-process bulk rate: <c>Collection.IngestAsync</c> on facts already in memory;</item>
/// <item>end to end over loopback: files read and parsed by the client library, streamed by
/// <see cref="BulkIngester"/> to the real server in a child process, acknowledged durable — for
/// FB15k-237's train split and a generated file — with the server's peak resident memory.</item>
/// </list>
/// Options: <c>--kg DIR</c> (default: <c>shared/data/kg</c> found above the working directory),
/// <c>--generated N</c> facts (default 10,000,000; 0 skips), <c>--concepts N</c> (default 1,000,000),
/// <c>--engine-facts N</c> (default 1,000,000), <c>--batch N</c> (default 10,000),
/// <c>--in-flight N</c> (default 4), <c>--out DIR</c> (default <c>benchmarks/results</c>).
/// </summary>
internal static class IngestBench
{
    private const int Relations = 200;
    private const int Dimension = 32;

    public static async Task<int> RunAsync(string[] args)
    {
        long generated = BenchReport.LongOption(args, "--generated", 10_000_000);
        int concepts = (int)BenchReport.LongOption(args, "--concepts", 1_000_000);
        int engineFacts = (int)BenchReport.LongOption(args, "--engine-facts", 1_000_000);
        int batch = (int)BenchReport.LongOption(args, "--batch", 10_000);
        int inFlight = (int)BenchReport.LongOption(args, "--in-flight", 4);
        string output = BenchReport.StringOption(args, "--out", Path.Combine("benchmarks", "results"));
        string kg = BenchReport.StringOption(args, "--kg", "") is { Length: > 0 } given ? given : FindKg();
        string serverDll = ServerDll();
        string work = Path.Combine(Path.GetTempPath(), "assocdb-ingest-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        var results = new Dictionary<string, object>
        {
            ["cores"] = Environment.ProcessorCount,
            ["batch"] = batch,
            ["in_flight"] = inFlight,
            ["dimension"] = Dimension,
        };
        try
        {
            string generatedFile = Path.Combine(work, "generated.tsv");
            int fileFacts = (int)Math.Max(generated, engineFacts);
            Console.WriteLine($"generating {fileFacts:N0} facts over {concepts:N0} concepts and {Relations} relations");
            GenerateFile(generatedFile, fileFacts, concepts, seed: 7);

            (double engineRate, int entryBytes) = await EngineRateAsync(Path.Combine(work, "engine"), generatedFile, engineFacts, batch);
            results["engine_facts"] = engineFacts;
            results["engine_facts_per_s"] = Math.Round(engineRate);
            results["engine_entry_bytes"] = entryBytes;

            double rawEntries = BenchReport.RawLogAppendRate(Path.Combine(work, "raw"), entryBytes, entries: 500).EntriesPerSecond;
            results["raw_log_entries_per_s"] = Math.Round(rawEntries, 1);
            results["raw_log_facts_per_s_equivalent"] = Math.Round(rawEntries * batch);

            foreach ((string name, string file, long count) in new[]
            {
                ("fb15k237", Path.Combine(kg, "fb15k-237", "train.txt"), 272_115L),
                ("generated", generatedFile, generated),
            })
            {
                if (count == 0)
                {
                    continue;
                }

                string input = file;
                if (name == "generated" && generated < fileFacts)
                {
                    input = Path.Combine(work, "generated-head.tsv");
                    File.WriteAllLines(input, File.ReadLines(generatedFile).Take((int)generated));
                }

                E2E e2e = await EndToEndAsync(serverDll, Path.Combine(work, "server-" + name), input, batch, inFlight);
                results[$"{name}_facts"] = e2e.Facts;
                results[$"{name}_seconds"] = Math.Round(e2e.Seconds, 2);
                results[$"{name}_facts_per_s"] = Math.Round(e2e.Facts / e2e.Seconds);
                results[$"{name}_server_peak_rss_mb"] = Math.Round(e2e.PeakResidentBytes / 1e6);
                results[$"{name}_server_start_rss_mb"] = Math.Round(e2e.StartResidentBytes / 1e6);
                results[$"{name}_data_dir_mb"] = Math.Round(e2e.DataBytes / 1e6);
                results[$"{name}_client_cpu_us_per_fact"] = Math.Round(e2e.ClientCpu.TotalMicroseconds / e2e.Facts, 3);
                results[$"{name}_server_cpu_us_per_fact"] = Math.Round(e2e.ServerCpu.TotalMicroseconds / e2e.Facts, 3);
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        BenchReport.PrintAndWrite(results, output, "ingest.json");
        return 0;
    }

    private sealed record E2E(long Facts, double Seconds, long PeakResidentBytes, long StartResidentBytes, long DataBytes, TimeSpan ClientCpu, TimeSpan ServerCpu);

    private static async Task<E2E> EndToEndAsync(string serverDll, string dataDirectory, string file, int batch, int inFlight)
    {
        await using ServerProcess server = await ServerProcess.StartAsync(serverDll, dataDirectory);
        using var client = new AssocDbClient(server.Address);
        await client.CreateCollectionAsync("bench", Dimension);
        // Before the load: the empty collection's footprint, against which the peak is read.
        long start = server.ResidentBytes;
        using IngestSource source = IngestSource.Open(file, IngestFormat.Tsv);
        var ingester = new BulkIngester(client, new BulkIngestOptions { Collection = "bench", Session = "bench", BatchSize = batch, MaxInFlight = inFlight });
        Console.WriteLine($"end to end: {file} ({source.Length / 1e6:0.0} MB) to {server.Address}");
        TimeSpan clientCpu = Process.GetCurrentProcess().TotalProcessorTime, serverCpu = server.ProcessorTime;
        var clock = Stopwatch.StartNew();
        using var report = new Timer(_ => Console.WriteLine(
            $"  {clock.Elapsed.TotalSeconds,6:0.0} s  {ingester.Counts.Facts,12:N0} facts  {ingester.Counts.Facts / clock.Elapsed.TotalSeconds,10:N0}/s  server rss {server.ResidentBytes / 1e6:N0} MB"),
            null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
        IngestCounts counts = await Task.Run(() => ingester.RunAsync(source.Read()));
        clock.Stop();
        // Read at once: the client's count would otherwise take in the checks below, the server's its idle time.
        clientCpu = Process.GetCurrentProcess().TotalProcessorTime - clientCpu;
        serverCpu = server.ProcessorTime - serverCpu;
        long stored = (await client.DescribeCollectionAsync("bench")).FactCount;
        if (stored != counts.Facts || counts.Rejected != 0)
        {
            throw new InvalidOperationException($"{file}: {counts.Facts} facts acknowledged, {stored} stored, {counts.Rejected} rejected");
        }

        long dataBytes = Directory.EnumerateFiles(dataDirectory, "*", SearchOption.AllDirectories).Sum(path => new FileInfo(path).Length);
        return new E2E(counts.Facts, clock.Elapsed.TotalSeconds, server.PeakResidentBytes, start, dataBytes, clientCpu, serverCpu);
    }

    /// <summary>The engine alone: facts parsed into memory first, then timed through IngestAsync in batches.</summary>
    private static async Task<(double FactsPerSecond, int EntryBytes)> EngineRateAsync(string folder, string file, int count, int batch)
    {
        var facts = new List<E.FactInput>(count);
        using (IngestSource source = IngestSource.Open(file, IngestFormat.Tsv))
        {
            foreach (FactItem item in source.Read().OfType<FactItem>().Take(count))
            {
                P.FactInput f = item.Fact;
                facts.Add(new E.FactInput(f.Head, f.Relation, f.Tail));
            }
        }

        var options = new DatabaseOptions { DataDirectory = folder, Device = "cpu", CheckpointInterval = TimeSpan.Zero };
        using var database = AssocDatabase.Open(options);
        database.CreateCollection(new E.CollectionSpec("bench", Dimension));
        Collection collection = database.GetCollection("bench").Value;
        Console.WriteLine($"engine in-process: {facts.Count:N0} facts in batches of {batch:N0}");
        var clock = Stopwatch.StartNew();
        int batches = 0;
        for (int offset = 0; offset < facts.Count; offset += batch, batches++)
        {
            var slice = facts.GetRange(offset, Math.Min(batch, facts.Count - offset));
            E.Result<E.IngestResult> result = await collection.IngestAsync(new E.IngestBatch("bench", offset + slice.Count - 1, [], slice));
            if (!result.IsOk || result.Value.Rejected.Count > 0)
            {
                throw new InvalidOperationException(result.IsOk ? result.Value.Rejected[0].ToString() : result.Error!.ToString());
            }
        }

        clock.Stop();
        long logBytes = Directory.EnumerateFiles(Path.Combine(folder), "*", SearchOption.AllDirectories)
            .Where(path => path.Contains($"{Path.DirectorySeparatorChar}wal{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && !path.EndsWith(".commit", StringComparison.Ordinal))
            .Sum(path => new FileInfo(path).Length);
        return (facts.Count / clock.Elapsed.TotalSeconds, (int)Math.Max(1, logBytes / Math.Max(1, batches)));
    }


    /// <summary>Distinct random triples <c>c{i} r{j} c{k}</c> as TSV; the same seed gives the same file.</summary>
    private static void GenerateFile(string path, int count, int concepts, int seed)
    {
        var random = new Random(seed);
        var seen = new HashSet<long>(count);
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        for (int i = 0; i < count;)
        {
            int head = random.Next(concepts), relation = random.Next(Relations), tail = random.Next(concepts);
            if (seen.Add(((long)head * Relations + relation) * concepts + tail))
            {
                writer.Write('c');
                writer.Write(head);
                writer.Write("\tr");
                writer.Write(relation);
                writer.Write("\tc");
                writer.Write(tail);
                writer.Write('\n');
                i++;
            }
        }
    }

    private static string FindKg()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            foreach (string candidate in new[] { Path.Combine(dir.FullName, "shared", "data", "kg"), Path.Combine(dir.FullName, "..", "shared", "data", "kg") })
            {
                if (Directory.Exists(candidate))
                {
                    return Path.GetFullPath(candidate);
                }
            }
        }

        throw new DirectoryNotFoundException("shared/data/kg not found above the working directory; pass --kg DIR");
    }

    /// <summary>The server's build output beside this bench's: same configuration and runtime folders.</summary>
    private static string ServerDll()
    {
        string bin = AppContext.BaseDirectory;
        var project = new DirectoryInfo(bin);
        while (project is not null && !File.Exists(Path.Combine(project.FullName, "AssocDB.IngestBench.csproj")))
        {
            project = project.Parent;
        }

        if (project?.Parent?.Parent is not DirectoryInfo repository)
        {
            throw new FileNotFoundException("cannot find the repository above " + bin);
        }

        string relative = Path.GetRelativePath(project.FullName, bin);
        string dll = Path.Combine(repository.FullName, "server", relative, "AssocDB.Server.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"build the server first: {dll} is missing");
    }


}
