using System.Collections;

namespace AssocDB.Client;

/// <summary>A list the server answered with, and whether it cut the list short to fit its message
/// size limit (<c>Limits:MaxMessageBytes</c>): then it holds the best items that fit, not all that
/// were asked for.</summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class ReplyList<T>(IReadOnlyList<T> items, bool truncated) : IReadOnlyList<T>
{
    /// <summary>Whether the server cut the list to fit its message size limit.</summary>
    public bool Truncated { get; } = truncated;

    /// <inheritdoc />
    public int Count => items.Count;

    /// <inheritdoc />
    public T this[int index] => items[index];

    /// <inheritdoc />
    public IEnumerator<T> GetEnumerator() => items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
