namespace AssocDB.GrpcBench;

/// <summary>Nearest-rank percentiles of a set of latencies, in milliseconds.</summary>
internal readonly record struct LatencySummary(double P50Ms, double P99Ms, double MeanMs, double MaxMs)
{
    public static LatencySummary Of(IEnumerable<double> milliseconds)
    {
        double[] sorted = [.. milliseconds.Order()];
        if (sorted.Length == 0)
        {
            return new LatencySummary(double.NaN, double.NaN, double.NaN, double.NaN);
        }

        double Rank(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        return new LatencySummary(Rank(0.50), Rank(0.99), sorted.Average(), sorted[^1]);
    }
}
