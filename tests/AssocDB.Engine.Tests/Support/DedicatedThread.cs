namespace AssocDB.Engine.Tests.Support;

/// <summary>
/// Runs a test's busy loop on a thread of its own. A loop that spins on a thread-pool thread until
/// another task signals it can hold the pool hostage: on a 2-core machine under full CPU load the
/// pool stops adding threads, so the signalling task (or a write waiting for its log commit, whose
/// completion also needs a pool thread) never runs and the whole test run hangs.
/// </summary>
internal static class DedicatedThread
{
    public static Task Run(Action loop) =>
        Task.Factory.StartNew(loop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
