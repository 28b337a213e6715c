using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FASTER.core;

namespace AssocDB.Benchmarks;

/// <summary>
/// What the end-to-end harnesses share: option parsing, FASTER's raw log ceiling, and the
/// table-plus-JSON report. Linked into each harness project, so they measure and print alike.
/// </summary>
internal static class BenchReport
{
    /// <summary>FASTER's own ceiling for a workload: entries of a given size, each committed before the next.</summary>
    public static (double EntriesPerSecond, double BytesPerSecond) RawLogAppendRate(string folder, int entryBytes, int entries)
    {
        using var settings = new FasterLogSettings(folder) { PageSizeBits = 25, MemorySizeBits = 26, SegmentSizeBits = 30 };
        using var log = new FasterLog(settings);
        byte[] entry = new byte[entryBytes];
        new Random(3).NextBytes(entry);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < entries; i++)
        {
            log.Enqueue(entry);
            log.CommitAsync().AsTask().GetAwaiter().GetResult();
        }

        watch.Stop();
        return (entries / watch.Elapsed.TotalSeconds, (double)entries * entryBytes / watch.Elapsed.TotalSeconds);
    }

    /// <summary>Prints the results as a table and writes them as JSON to <paramref name="folder"/>/<paramref name="fileName"/>.</summary>
    public static void PrintAndWrite(IReadOnlyDictionary<string, object> results, string folder, string fileName)
    {
        Console.WriteLine();
        Console.WriteLine($"| {"measure",-40} | {"value",14} |");
        Console.WriteLine($"|{new string('-', 42)}|{new string('-', 16)}|");
        foreach ((string key, object value) in results)
        {
            Console.WriteLine($"| {key,-40} | {Convert.ToString(value, CultureInfo.InvariantCulture),14} |");
        }

        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, fileName);
        File.WriteAllText(path, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"\nwrote {path}");
    }

    public static long LongOption(string[] args, string name, long fallback)
    {
        int index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? long.Parse(args[index + 1], CultureInfo.InvariantCulture) : fallback;
    }

    public static string StringOption(string[] args, string name, string fallback)
    {
        int index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
    }
}
