namespace AssocDB.Engine.Tests;

// Guards the helper that applies a batch's state-store writes beside its index updates: both run,
// exactly once, the caller does not return before the side work ends, and a side failure surfaces.
public sealed class SideBySideTests
{
    [Fact]
    public void Both_run_once_and_the_side_work_has_ended_on_return()
    {
        int mainRuns = 0, sideRuns = 0;
        bool sideEnded = false;
        SideBySide.Invoke(
            () => Interlocked.Increment(ref mainRuns),
            () =>
            {
                Interlocked.Increment(ref sideRuns);
                Thread.Sleep(50);
                Volatile.Write(ref sideEnded, true);
            });

        Assert.Equal(1, mainRuns);
        Assert.Equal(1, sideRuns);
        Assert.True(Volatile.Read(ref sideEnded));
    }

    [Fact]
    public void A_failure_of_the_side_work_is_thrown_to_the_caller()
    {
        var failure = Assert.Throws<InvalidOperationException>(() => SideBySide.Invoke(() => { }, () => throw new InvalidOperationException("side failed")));
        Assert.Equal("side failed", failure.Message);
    }
}
