using System.Diagnostics;
using AssocDB.Engine;
using AssocDB.Engine.Model;

namespace AssocDB.GrpcBench;

/// <summary>One in-process batch size: <c>Collection.Search</c> called back to back by one thread,
/// each call a batch of queries (the engine parallelizes inside the call).</summary>
internal sealed record InProcessRun(int Batch, int Calls, double QueriesPerSecond, double CallP50Ms, double CallP99Ms)
{
    /// <summary>Runs batches of <paramref name="batch"/> queries, taken in turn from
    /// <paramref name="queries"/>, for <paramref name="duration"/> after two warm-up calls.</summary>
    public static InProcessRun Measure(Collection collection, SearchQuery[] queries, int batch, int k, TimeSpan duration)
    {
        var options = new SearchOptions(k);
        int batches = Math.Max(1, queries.Length / batch);
        SearchQuery[] Slice(int i)
        {
            int start = i % batches * batch;
            return start + batch <= queries.Length ? queries[start..(start + batch)] : [.. Enumerable.Range(start, batch).Select(j => queries[j % queries.Length])];
        }

        for (int i = 0; i < 2; i++)
        {
            Search(collection, Slice(i), options);
        }

        var callMs = new List<double>();
        var clock = Stopwatch.StartNew();
        // At least three calls, so a slow batch size still gets a median.
        while (clock.Elapsed < duration || callMs.Count < 3)
        {
            SearchQuery[] next = Slice(callMs.Count);
            long start = Stopwatch.GetTimestamp();
            Search(collection, next, options);
            callMs.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        clock.Stop();
        LatencySummary latency = LatencySummary.Of(callMs);
        return new InProcessRun(batch, callMs.Count, callMs.Count * (double)batch / clock.Elapsed.TotalSeconds, latency.P50Ms, latency.P99Ms);
    }

    /// <summary>The top-k concept names of each query, for comparing with what the server answers.</summary>
    public static string[][] TopNames(Collection collection, SearchQuery[] queries, int k) =>
        [.. Search(collection, queries, new SearchOptions(k)).Select(hits => hits.Select(h => h.Concept).ToArray())];

    private static IReadOnlyList<IReadOnlyList<SearchHit>> Search(Collection collection, SearchQuery[] queries, SearchOptions options)
    {
        Result<IReadOnlyList<IReadOnlyList<SearchHit>>> result = collection.Search(queries, options);
        return result.IsOk ? result.Value : throw new InvalidOperationException($"in-process search failed: {result.Error}");
    }
}
