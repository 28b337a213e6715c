namespace AssocDB.Engine.Tests.Support;

/// <summary>Runs a callback on each report, on the reporting thread (Progress&lt;T&gt; would post it
/// to the thread pool, after the reporter moved on).</summary>
internal sealed class CallbackProgress<T>(Action<T> callback) : IProgress<T>
{
    public void Report(T value) => callback(value);
}
