using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Every fact stored once, as an undirected edge with its orientation, and indexed from both
/// endpoints: each concept's adjacency list holds the ids of all edges touching it, whichever end it
/// is. Facts are kept unique by looking them up in those lists (see <see cref="TryFind"/>).
/// </summary>
/// <remarks>
/// Columns are parallel arrays rather than objects to keep resident memory per fact small (about
/// 16 bytes of columns and 8 of adjacency). Removed edge ids are reused lowest first.
/// </remarks>
internal sealed class EdgeIndex
{
    private int[] _heads = new int[1024];
    private int[] _relations = new int[1024];
    private int[] _tails = new int[1024];
    private float[] _weights = new float[1024];
    private IReadOnlyDictionary<string, string>?[] _payloads = new IReadOnlyDictionary<string, string>?[1024];
    private bool[] _live = new bool[1024];
    private int _count;
    private readonly SortedSet<int> _free = [];
    private readonly AdjacencyLists _adjacency = new();

    public int Count => _count;

    /// <summary>One past the highest edge id ever used.</summary>
    public int IdLimit { get; private set; }

    public int Head(int edge) => _heads[edge];

    public int Relation(int edge) => _relations[edge];

    public int Tail(int edge) => _tails[edge];

    public float Weight(int edge) => _weights[edge];

    public IReadOnlyDictionary<string, string> Payload(int edge) => _payloads[edge] ?? RecordCodec.EmptyMap;

    public bool IsLive(int edge) => edge >= 0 && edge < IdLimit && _live[edge];

    /// <summary>
    /// Finds the edge <c>head relation tail</c> by scanning the adjacency list of whichever endpoint
    /// has fewer edges. A (head, relation, tail) hash index would cost about 40 bytes per fact; the
    /// scan costs the smaller degree, which stays small unless both endpoints are hubs.
    /// </summary>
    public bool TryFind(int head, int relation, int tail, out int edge)
    {
        ReadOnlySpan<int> fromHead = _adjacency.Of(head), fromTail = _adjacency.Of(tail);
        foreach (int candidate in fromHead.Length <= fromTail.Length ? fromHead : fromTail)
        {
            if (_relations[candidate] == relation && _heads[candidate] == head && _tails[candidate] == tail)
            {
                edge = candidate;
                return true;
            }
        }

        edge = -1;
        return false;
    }

    /// <summary>Edge ids touching a concept, in either direction.</summary>
    public ReadOnlySpan<int> EdgesOf(int concept) => _adjacency.Of(concept);

    public int Degree(int concept) => _adjacency.Of(concept).Length;

    /// <summary>Ids free below the limit, lowest first; new ids continue from the limit.</summary>
    public IEnumerable<int> FreeIds => _free;

    /// <summary>Adds an edge, or replaces the edge with the same id.</summary>
    public void Put(EdgeRecord edge)
    {
        EnsureCapacity(edge.Id + 1);
        if (_live[edge.Id])
        {
            Unlink(edge.Id);
        }

        for (int id = IdLimit; id < edge.Id; id++)
        {
            _free.Add(id);
        }

        IdLimit = Math.Max(IdLimit, edge.Id + 1);
        if (_free.Count > 0)
        {
            _free.Remove(edge.Id);
        }

        _heads[edge.Id] = edge.Head;
        _relations[edge.Id] = edge.Relation;
        _tails[edge.Id] = edge.Tail;
        _weights[edge.Id] = edge.Weight;
        _payloads[edge.Id] = edge.Payload is { Count: > 0 } ? edge.Payload : null;
        _live[edge.Id] = true;
        _count++;
        _adjacency.Add(edge.Head, edge.Id);
        if (edge.Tail != edge.Head)
        {
            _adjacency.Add(edge.Tail, edge.Id);
        }
    }

    public void Delete(int edge)
    {
        if (!IsLive(edge))
        {
            return;
        }

        Unlink(edge);
        _payloads[edge] = null;
        _free.Add(edge);
    }

    private void Unlink(int edge)
    {
        _live[edge] = false;
        _count--;
        _adjacency.Remove(_heads[edge], edge);
        if (_tails[edge] != _heads[edge])
        {
            _adjacency.Remove(_tails[edge], edge);
        }
    }

    private void EnsureCapacity(int size)
    {
        if (size <= _live.Length)
        {
            return;
        }

        int capacity = Math.Max(size, _live.Length * 2);
        Array.Resize(ref _heads, capacity);
        Array.Resize(ref _relations, capacity);
        Array.Resize(ref _tails, capacity);
        Array.Resize(ref _weights, capacity);
        Array.Resize(ref _payloads, capacity);
        Array.Resize(ref _live, capacity);
    }
}
