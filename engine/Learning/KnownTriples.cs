using System.Runtime.InteropServices;

namespace AssocDB.Engine.Learning;

/// <summary>
/// Every triple known to be true (usually train + valid + test), indexed for the filtered
/// setting of link prediction: for <c>(h, r, ?)</c> the known tails, for <c>(?, r, t)</c> the
/// known heads, so that other correct answers do not count against a ranked one.
/// </summary>
public sealed class KnownTriples
{
    private readonly Dictionary<long, List<int>> _tails = [];
    private readonly Dictionary<long, List<int>> _heads = [];
    private readonly HashSet<Triple> _all = [];

    /// <summary>Creates an index over the given splits.</summary>
    public KnownTriples(params Triple[][] splits)
    {
        ArgumentNullException.ThrowIfNull(splits);
        foreach (Triple[] split in splits)
        {
            Add(split);
        }
    }

    /// <summary>Distinct triples indexed.</summary>
    public int Count => _all.Count;

    /// <summary>Adds triples; duplicates are ignored.</summary>
    public void Add(ReadOnlySpan<Triple> triples)
    {
        foreach (Triple t in triples)
        {
            if (!_all.Add(t))
            {
                continue;
            }

            Append(_tails, Key(t.Head, t.Relation), t.Tail);
            Append(_heads, Key(t.Tail, t.Relation), t.Head);
        }
    }

    /// <summary>Whether the triple is known.</summary>
    public bool Contains(Triple triple) => _all.Contains(triple);

    /// <summary>Known tails of <c>(head, relation, ?)</c>.</summary>
    public ReadOnlySpan<int> TailsOf(int head, int relation) =>
        _tails.TryGetValue(Key(head, relation), out List<int>? list) ? CollectionsMarshal.AsSpan(list) : [];

    /// <summary>Known heads of <c>(?, relation, tail)</c>.</summary>
    public ReadOnlySpan<int> HeadsOf(int relation, int tail) =>
        _heads.TryGetValue(Key(tail, relation), out List<int>? list) ? CollectionsMarshal.AsSpan(list) : [];

    private static long Key(int concept, int relation) => ((long)relation << 32) | (uint)concept;

    private static void Append(Dictionary<long, List<int>> index, long key, int value)
    {
        if (!index.TryGetValue(key, out List<int>? list))
        {
            list = [];
            index.Add(key, list);
        }

        list.Add(value);
    }
}
