using System.Collections;

namespace AssocDB.Engine.Model;

/// <summary>
/// A query's results in order, read-only, with what the query says about them on the derived type.
/// </summary>
/// <remarks>Only <see cref="IReadOnlyList{T}"/>: a <c>ReadOnlyCollection</c> also implements
/// <see cref="IList{T}"/>, whose Add, Insert, Remove, Clear and setter threw
/// <see cref="NotSupportedException"/> for any caller that took it as the list it claims to be.</remarks>
/// <typeparam name="T">The result type.</typeparam>
/// <param name="items">The results; kept, not copied, so the query must not change them after.</param>
public abstract class ResultList<T>(IReadOnlyList<T> items) : IReadOnlyList<T>
{
    /// <inheritdoc />
    public int Count => items.Count;

    /// <inheritdoc />
    public T this[int index] => items[index];

    /// <inheritdoc />
    public IEnumerator<T> GetEnumerator() => items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
