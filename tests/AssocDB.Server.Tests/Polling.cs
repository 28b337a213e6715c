using System.Diagnostics;

namespace AssocDB.Server.Tests;

/// <summary>Waiting in a test for what a server or a task brings about in its own time.</summary>
internal static class Polling
{
    /// <summary>Checks <paramref name="condition"/> every 20 ms until it holds. Fails the test once
    /// <paramref name="within"/> has passed without it, or as soon as <paramref name="gaveUp"/>
    /// says why it can no longer come about (the work waited on ended first).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan within, Func<string?>? gaveUp = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (gaveUp?.Invoke() is { } why)
            {
                Assert.Fail($"{why} before {what}");
            }

            if (clock.Elapsed > within)
            {
                Assert.Fail($"no {what} within {within.TotalSeconds:0} s");
            }

            await Task.Delay(20);
        }
    }
}
