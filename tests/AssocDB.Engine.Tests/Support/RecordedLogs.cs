using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace AssocDB.Engine.Tests.Support;

/// <summary>Loggers for a database under test that keep every message, formatted, so a test can
/// read what the engine reported.</summary>
public sealed class RecordedLogs : ILoggerFactory
{
    private readonly ConcurrentQueue<string> _messages = new();

    /// <summary>The messages logged so far, in order.</summary>
    public IReadOnlyList<string> Messages => [.. _messages];

    public ILogger CreateLogger(string categoryName) => new Logger(_messages);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("the messages are recorded here only");

    public void Dispose()
    {
    }

    private sealed class Logger(ConcurrentQueue<string> messages) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            messages.Enqueue(formatter(state, exception));
    }
}
