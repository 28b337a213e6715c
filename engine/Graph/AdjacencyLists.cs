namespace AssocDB.Engine.Graph;

/// <summary>
/// Per-concept lists of edge ids, as bare arrays with a count (no List object per concept, which
/// would double the memory of a sparse graph). Removal swaps the last entry in: order is not kept.
/// </summary>
internal sealed class AdjacencyLists
{
    private int[]?[] _lists = new int[1024][];
    private int[] _counts = new int[1024];

    public ReadOnlySpan<int> Of(int concept) =>
        concept < _lists.Length && _lists[concept] is { } list ? list.AsSpan(0, _counts[concept]) : [];

    public void Add(int concept, int edge)
    {
        if (concept >= _lists.Length)
        {
            int capacity = Math.Max(concept + 1, _lists.Length * 2);
            Array.Resize(ref _lists, capacity);
            Array.Resize(ref _counts, capacity);
        }

        int[] list = _lists[concept] ??= new int[2];
        if (_counts[concept] == list.Length)
        {
            Array.Resize(ref list, list.Length * 2);
            _lists[concept] = list;
        }

        list[_counts[concept]++] = edge;
    }

    public void Remove(int concept, int edge)
    {
        int[]? list = _lists[concept];
        if (list is null)
        {
            return;
        }

        int count = _counts[concept];
        int index = Array.IndexOf(list, edge, 0, count);
        if (index < 0)
        {
            return;
        }

        list[index] = list[count - 1];
        _counts[concept] = count - 1;
        if (count - 1 == 0)
        {
            _lists[concept] = null;
        }
    }
}
