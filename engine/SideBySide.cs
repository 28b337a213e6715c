using System.Runtime.ExceptionServices;

namespace AssocDB.Engine;

/// <summary>
/// Runs two independent pieces of work at once: the side work is offered to the thread pool while
/// the caller runs the main work, and if no pool thread has taken it by then the caller runs it
/// too. Progress never waits for a free pool thread, which a loaded 2-core machine may not have.
/// </summary>
internal static class SideBySide
{
    public static void Invoke(Action main, Action side)
    {
        using var work = new SideWork(side);
        ThreadPool.UnsafeQueueUserWorkItem(static offered => offered.TryRun(), work, preferLocal: false);
        try
        {
            main();
        }
        finally
        {
            // Never return while the side work still runs: it shares the caller's state.
            if (!work.TryRun())
            {
                work.WaitUntilDone();
            }
        }

        work.ThrowIfFailed();
    }

    private sealed class SideWork(Action action) : IDisposable
    {
        private readonly ManualResetEventSlim _done = new();
        private int _claimed;
        private ExceptionDispatchInfo? _failure;

        /// <summary>Runs the work unless another thread claimed it first; true when this call ran it.</summary>
        public bool TryRun()
        {
            if (Interlocked.Exchange(ref _claimed, 1) != 0)
            {
                return false;
            }

            try
            {
                action();
            }
            catch (Exception exception)
            {
                _failure = ExceptionDispatchInfo.Capture(exception);
            }
            finally
            {
                _done.Set();
            }

            return true;
        }

        public void WaitUntilDone() => _done.Wait();

        public void ThrowIfFailed() => _failure?.Throw();

        public void Dispose() => _done.Dispose();
    }
}
