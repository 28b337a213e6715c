using System.Runtime.InteropServices;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Per-concept lists of edge ids, as bare arrays (no List object per concept, which would double
/// the memory of a sparse graph). Removal swaps the last entry in: order is not kept.
/// </summary>
/// <remarks>
/// A list's first element is its count and its edges follow: ingest looks up and extends the lists
/// of random concepts, each a cache miss, and a count kept beside the edges costs none of its own.
/// </remarks>
internal sealed class AdjacencyLists
{
    /// <summary>Room for the count and three edges: most concepts of a loaded graph have more than
    /// one, and each growth copies the list.</summary>
    private const int FirstCapacity = 4;

    private int[]?[] _lists = new int[1024][];

    public ReadOnlySpan<int> Of(int concept) =>
        concept < _lists.Length && _lists[concept] is { } list ? list.AsSpan(1, list[0]) : [];

    /// <summary>
    /// Asks the CPU to start loading a concept's list, so that a loop over many random concepts
    /// overlaps their cache misses instead of waiting for each in turn. A list is reached through
    /// its reference, itself a likely miss: fetch that (<paramref name="reference"/>) some steps
    /// before the list (see <see cref="CacheHint"/>).
    /// </summary>
    public void Prefetch(int concept, bool reference)
    {
        if (!CacheHint.Supported || (uint)concept >= (uint)_lists.Length)
        {
            return;
        }

        if (reference)
        {
            CacheHint.Prefetch(ref _lists[concept]);
        }
        else if (_lists[concept] is { } list)
        {
            CacheHint.Prefetch(ref MemoryMarshal.GetArrayDataReference(list));
        }
    }

    public void Add(int concept, int edge)
    {
        if (concept >= _lists.Length)
        {
            Array.Resize(ref _lists, Math.Max(concept + 1, _lists.Length * 2));
        }

        int[] list = _lists[concept] ??= new int[FirstCapacity];
        int count = list[0];
        if (count + 1 == list.Length)
        {
            Array.Resize(ref list, list.Length * 2);
            _lists[concept] = list;
        }

        list[count + 1] = edge;
        list[0] = count + 1;
    }

    public void Remove(int concept, int edge)
    {
        int[]? list = _lists[concept];
        if (list is null)
        {
            return;
        }

        int count = list[0];
        int index = Array.IndexOf(list, edge, 1, count);
        if (index < 0)
        {
            return;
        }

        list[index] = list[count];
        list[0] = count - 1;
        if (count - 1 == 0)
        {
            _lists[concept] = null;
        }
    }
}
