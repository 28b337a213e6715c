using System.Diagnostics;
using AssocDB.Client;
using AssocDB.Protocol.V1;

namespace AssocDB.GrpcBench;

/// <summary>
/// One closed-loop load over loopback gRPC: each client awaits one single-query Search call after
/// another. Only calls that start after the warm-up and end within the measured window count, so
/// QPS is completed calls over the window. While it runs, the server's search batch histogram, this
/// process's CPU time (clients and server together) and the thread pool are sampled.
/// </summary>
internal sealed record GrpcRun(
    string Label,
    int Clients,
    bool Batching,
    string Channel,
    int Calls,
    double QueriesPerSecond,
    LatencySummary Latency,
    double MeanBatch,
    double CpuPercent,
    int MaxThreadPoolThreads,
    long MaxPendingWorkItems,
    string LoadAverage)
{
    /// <summary>Loads <paramref name="server"/> with <paramref name="clients"/> concurrent clients,
    /// sharing one channel unless <paramref name="channelPerClient"/>.</summary>
    public static async Task<GrpcRun> MeasureAsync(
        HostedServer server, bool batching, int clients, bool channelPerClient, string collection,
        SearchQuery[] queries, int k, TimeSpan warmup, TimeSpan duration)
    {
        var options = new AssocDbClientOptions { Address = server.Address, Timeout = TimeSpan.FromMinutes(1) };
        AssocDbClient[] connections = [.. Enumerable.Range(0, channelPerClient ? clients : 1).Select(_ => new AssocDbClient(options))];
        try
        {
            long windowStart = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
            long windowEnd = windowStart + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            Task<List<double>>[] loops =
            [
                .. Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientLoopAsync(
                    connections[c % connections.Length], collection, queries, c * queries.Length / clients, k, windowStart, windowEnd))),
            ];

            await Task.Delay(Remaining(windowStart));
            (double searchesBefore, double queriesBefore) = await server.SearchBatchCountersAsync();
            TimeSpan cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            long cpuClock = Stopwatch.GetTimestamp();
            int maxThreads = 0;
            long maxPending = 0;
            while (Stopwatch.GetTimestamp() < windowEnd)
            {
                maxThreads = Math.Max(maxThreads, ThreadPool.ThreadCount);
                maxPending = Math.Max(maxPending, ThreadPool.PendingWorkItemCount);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(200, Remaining(windowEnd).TotalMilliseconds)));
            }

            double cpuPercent = 100 * (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds
                / Stopwatch.GetElapsedTime(cpuClock).TotalSeconds / Environment.ProcessorCount;
            (double searchesAfter, double queriesAfter) = await server.SearchBatchCountersAsync();
            List<double>[] latencies = await Task.WhenAll(loops);
            List<double> all = [.. latencies.SelectMany(l => l)];
            string channel = channelPerClient ? "one per client" : "shared";
            string label = $"gRPC, {clients} client{(clients == 1 ? "" : "s")}, batching {(batching ? "on" : "off")}";
            return new GrpcRun(
                label, clients, batching, channel, all.Count, all.Count / duration.TotalSeconds, LatencySummary.Of(all),
                (queriesAfter - queriesBefore) / Math.Max(1, searchesAfter - searchesBefore),
                cpuPercent, maxThreads, maxPending, MachineLoad.LoadAverage());
        }
        finally
        {
            foreach (AssocDbClient connection in connections)
            {
                connection.Dispose();
            }
        }
    }

    /// <summary>One client: single-query calls back to back until the window ends; returns the
    /// latencies (ms) of the calls that lie inside the window.</summary>
    private static async Task<List<double>> ClientLoopAsync(
        AssocDbClient client, string collection, SearchQuery[] queries, int first, int k, long windowStart, long windowEnd)
    {
        var inWindow = new List<double>();
        for (int next = first; Stopwatch.GetTimestamp() < windowEnd; next++)
        {
            long start = Stopwatch.GetTimestamp();
            await client.SearchAsync(collection, queries[next % queries.Length], k);
            long end = Stopwatch.GetTimestamp();
            if (start >= windowStart && end <= windowEnd)
            {
                inWindow.Add((end - start) * 1000.0 / Stopwatch.Frequency);
            }
        }

        return inWindow;
    }

    private static TimeSpan Remaining(long until) =>
        TimeSpan.FromSeconds(Math.Max(0, until - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
}
