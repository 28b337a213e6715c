using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Every fact stored once, as an undirected edge with its orientation, and indexed from both
/// endpoints: each concept's adjacency list holds the ids of all edges touching it, whichever end it
/// is. Facts are kept unique by looking them up in those lists (see <see cref="TryFind"/>), past a
/// filter that rules out most facts not stored (see <see cref="FactFilter"/>).
/// </summary>
/// <remarks>
/// Edges are structs in one chunked array (see <see cref="ChunkedArray{T}"/>) rather than objects,
/// to keep resident memory per fact small (16 bytes, and 8 of adjacency). An edge's head, relation
/// and tail share a cache line: finding a fact reads all three of each candidate, at random, and
/// parallel columns cost a miss each. Payloads are kept only for the edges that have one. Removed
/// edge ids are reused lowest first.
/// </remarks>
internal sealed class EdgeIndex
{
    private readonly ChunkedArray<Edge> _edges = new(FirstCapacity);

    /// <summary>The payloads of the edges that have one. Most facts of a loaded graph have none, and a
    /// column of references cost 8 bytes per edge of capacity (134 MB at 10 M facts when columns
    /// grew by doubling), which the collector scanned at each full collection.</summary>
    private readonly Dictionary<int, IReadOnlyDictionary<string, string>> _payloads = [];
    private readonly ChunkedArray<bool> _live = new(FirstCapacity);
    private int _count;
    private readonly IdSpace _ids = new();
    private readonly AdjacencyLists _adjacency = new();
    private readonly FactFilter _filter = new();

    private const int FirstCapacity = 1024;

    public int Count => _count;

    /// <summary>One past the highest edge id ever used.</summary>
    public int IdLimit => _ids.Limit;

    public int Head(int edge) => _edges[edge].Head;

    public int Relation(int edge) => _edges[edge].Relation;

    public int Tail(int edge) => _edges[edge].Tail;

    public float Weight(int edge) => _edges[edge].Weight;

    public IReadOnlyDictionary<string, string> Payload(int edge) =>
        _payloads.Count > 0 && _payloads.TryGetValue(edge, out IReadOnlyDictionary<string, string>? payload) ? payload : RecordCodec.EmptyMap;

    public bool IsLive(int edge) => edge >= 0 && edge < IdLimit && _live[edge];

    /// <summary>
    /// Finds the edge <c>head relation tail</c> by scanning the adjacency list of whichever endpoint
    /// has fewer edges, unless the filter rules it out. A (head, relation, tail) hash index would
    /// cost about 40 bytes per fact; the scan costs the smaller degree, which stays small unless
    /// both endpoints are hubs, and the filter 1 to 4 bytes.
    /// </summary>
    public bool TryFind(int head, int relation, int tail, out int edge)
    {
        edge = -1;
        if (!_filter.MayContain(head, relation, tail))
        {
            return false;
        }

        ReadOnlySpan<int> fromHead = _adjacency.Of(head), fromTail = _adjacency.Of(tail);
        foreach (int candidate in fromHead.Length <= fromTail.Length ? fromHead : fromTail)
        {
            ref readonly Edge stored = ref _edges[candidate];
            if (stored.Relation == relation && stored.Head == head && stored.Tail == tail)
            {
                edge = candidate;
                return true;
            }
        }

        return false;
    }

    /// <summary>False when the fact is certainly not stored, so <see cref="TryFind"/> need not scan.</summary>
    public bool MayContain(int head, int relation, int tail) => _filter.MayContain(head, relation, tail);

    /// <summary>Starts loading the adjacency lists of two concepts, or the references to them (see
    /// <see cref="AdjacencyLists.Prefetch"/>).</summary>
    public void PrefetchListsOf(int head, int tail, bool references)
    {
        _adjacency.Prefetch(head, references);
        _adjacency.Prefetch(tail, references);
    }

    /// <summary>Starts loading what <see cref="MayContain"/> and <see cref="Put"/> read of the filter
    /// for a fact.</summary>
    public void PrefetchFilterOf(int head, int relation, int tail) => _filter.Prefetch(head, relation, tail);

    /// <summary>Edge ids touching a concept, in either direction.</summary>
    public ReadOnlySpan<int> EdgesOf(int concept) => _adjacency.Of(concept);

    public int Degree(int concept) => _adjacency.Of(concept).Length;

    /// <summary>Ids free below the limit, lowest first; new ids continue from the limit.</summary>
    public IEnumerable<int> FreeIds => _ids.Free;

    /// <summary>Adds an edge, or replaces the edge with the same id.</summary>
    public void Put(EdgeRecord edge)
    {
        if (IsLive(edge.Id))
        {
            Unlink(edge.Id);
            _payloads.Remove(edge.Id);
        }

        Store(edge);
        Link(edge);
    }

    /// <summary>
    /// Adds an edge whose id is not live without linking it into its endpoints' adjacency lists:
    /// <see cref="Link"/> does that, on another thread if the caller likes, as the two touch nothing
    /// in common. Nothing may read the lists (find, list or unlink edges) until it is linked.
    /// </summary>
    public void PutUnlinked(EdgeRecord edge)
    {
        if (IsLive(edge.Id))
        {
            throw new InvalidOperationException($"edge {edge.Id} is stored; Put replaces it");
        }

        Store(edge);
    }

    /// <summary>Links an edge stored by <see cref="PutUnlinked"/> into its endpoints' adjacency lists.</summary>
    public void Link(EdgeRecord edge)
    {
        _adjacency.Add(edge.Head, edge.Id);
        if (edge.Tail != edge.Head)
        {
            _adjacency.Add(edge.Tail, edge.Id);
        }
    }

    /// <summary>Stores an edge's columns and adds it to the filter; its id is not live, and has no
    /// payload (removing or replacing an edge drops its payload).</summary>
    private void Store(EdgeRecord edge)
    {
        EnsureCapacity(edge.Id + 1);
        _ids.Use(edge.Id);
        _edges[edge.Id] = new Edge(edge.Head, edge.Relation, edge.Tail, edge.Weight);
        if (edge.Payload is { Count: > 0 } payload)
        {
            _payloads[edge.Id] = payload;
        }

        _live[edge.Id] = true;
        _count++;
        if (_filter.Full)
        {
            RebuildFilter();
        }
        else
        {
            _filter.Add(edge.Head, edge.Relation, edge.Tail);
        }
    }

    /// <summary>How many edges ahead of its addition a rebuild fetches an edge's filter word: the
    /// edges are read in order, their words lie at random in megabytes.</summary>
    private const int RebuildPrefetchDistance = 16;

    /// <summary>Refills the filter with the live edges (this one among them), sized for more.</summary>
    private void RebuildFilter()
    {
        _filter.Reset(_count);
        int limit = IdLimit;
        for (int id = 0; id < limit; id++)
        {
            int ahead = id + RebuildPrefetchDistance;
            if (ahead < limit && _live[ahead])
            {
                _filter.Prefetch(_edges[ahead].Head, _edges[ahead].Relation, _edges[ahead].Tail);
            }

            if (_live[id])
            {
                _filter.Add(_edges[id].Head, _edges[id].Relation, _edges[id].Tail);
            }
        }
    }

    public void Delete(int edge)
    {
        if (!IsLive(edge))
        {
            return;
        }

        Unlink(edge);
        _payloads.Remove(edge);
        _ids.Release(edge);
    }

    private void Unlink(int edge)
    {
        _live[edge] = false;
        _count--;
        (int head, int tail) = (_edges[edge].Head, _edges[edge].Tail);
        _adjacency.Remove(head, edge);
        if (tail != head)
        {
            _adjacency.Remove(tail, edge);
        }
    }

    private void EnsureCapacity(int size)
    {
        _edges.EnsureCapacity(size);
        _live.EnsureCapacity(size);
    }

    /// <summary>One stored edge's columns, 16 bytes.</summary>
    private readonly record struct Edge(int Head, int Relation, int Tail, float Weight);
}
