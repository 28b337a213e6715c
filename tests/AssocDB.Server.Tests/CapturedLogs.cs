using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace AssocDB.Server.Tests;

/// <summary>
/// A logger provider for a server under test that keeps every event's name and structured fields,
/// so a test can read what the server and engine reported (how many log entries a recovery
/// replayed, for one) rather than match formatted text.
/// </summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEvent> _events = new();

    /// <summary>The events logged so far, in order.</summary>
    public IReadOnlyList<LogEvent> Events => [.. _events];

    public ILogger CreateLogger(string categoryName) => new Logger(_events);

    public void Dispose()
    {
    }

    /// <summary>One event: its name (the <c>[LoggerMessage]</c> method's) and its named fields.</summary>
    public sealed record LogEvent(string Name, IReadOnlyDictionary<string, object?> Fields);

    private sealed class Logger(ConcurrentQueue<LogEvent> events) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            IEnumerable<KeyValuePair<string, object?>> fields = state as IEnumerable<KeyValuePair<string, object?>> ?? [];
            events.Enqueue(new LogEvent(eventId.Name ?? "", fields.ToDictionary(f => f.Key, f => f.Value)));
        }
    }
}
