namespace AssocDB.Engine.Graph;

/// <summary>
/// Hands out the ids a write batch will use: free ids lowest first, then new ids from the limit.
/// Ids are chosen while planning, before the batch is logged, so replay assigns the same ones.
/// </summary>
internal sealed class IdAllocator(IEnumerable<int> freeAscending, int limit)
{
    private readonly IEnumerator<int> _free = freeAscending.GetEnumerator();
    private int _next = limit;

    public int Next() => _free.MoveNext() ? _free.Current : _next++;
}
