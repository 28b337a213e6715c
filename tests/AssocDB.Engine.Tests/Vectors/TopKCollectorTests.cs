using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Vectors;

public sealed class TopKCollectorTests
{
    // The collector grows with what it keeps, past each capacity it starts from, and keeps exactly
    // the k best (score descending, then row ascending on ties).
    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(5000)]
    public void It_keeps_the_k_best_of_what_it_is_offered(int k)
    {
        var random = new Random(k);
        // Scores from few values, so that many tie.
        (float Score, int Row)[] offered = [.. Enumerable.Range(0, 3000).Select(row => ((float)random.Next(50), row))];
        var top = new TopKCollector(k);
        foreach ((float score, int row) in offered.OrderBy(_ => random.Next()))
        {
            top.Add(score, row);
        }

        SearchHits hits = top.ToHits();
        (float Score, int Row)[] expected = [.. offered.OrderByDescending(o => o.Score).ThenBy(o => o.Row).Take(k)];
        Assert.Equal(expected.Select(e => e.Row), hits.Rows);
        Assert.Equal(expected.Select(e => e.Score), hits.Scores);
    }

    // A scan gives each worker a collector per query: at k = 10,000 each took 80 kB before a row
    // was seen, a gigabyte for 256 queries on 64 cores, where a filter leaves each worker few rows.
    [Fact]
    public void A_large_k_costs_memory_only_for_what_is_kept()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var top = new TopKCollector(10_000);
        for (int row = 0; row < 3; row++)
        {
            top.Add(row, row);
        }

        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 1, 1024);
        Assert.Equal([2, 1, 0], top.ToHits().Rows);
    }
}
