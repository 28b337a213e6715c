namespace AssocDB.Server.Tests;

/// <summary>Reads async sequences in tests. System.Linq.Async (pulled in by a dependency) and the
/// framework both define <c>ToListAsync</c> in the same namespace, so a call to it is ambiguous.</summary>
internal static class AsyncSequences
{
    public static async Task<List<T>> CollectAsync<T>(this IAsyncEnumerable<T> sequence)
    {
        var items = new List<T>();
        await foreach (T item in sequence)
        {
            items.Add(item);
        }

        return items;
    }
}
