namespace AssocDB.Engine.Learning;

/// <summary>
/// Distinct facts in three sorted orders, so the miner can walk out-edges by subject, find the
/// relations linking a given pair by binary search, and scan one relation's facts by subject,
/// all without hashing. Memory is O(F + n + m).
/// </summary>
internal sealed class FactIndex
{
    private readonly int[] _pairTail;
    private readonly int[] _pairRelation;
    private readonly int[] _outRelationStart;
    private readonly int[] _outRelations;
    private readonly int[] _relationStart;
    private readonly Triple[] _byRelation;

    public FactIndex(ReadOnlySpan<Triple> facts, int conceptCount, int relationCount)
    {
        ConceptCount = conceptCount;
        RelationCount = relationCount;

        Triple[] byHead = facts.ToArray();
        Array.Sort(byHead, static (a, b) => a.Head != b.Head ? a.Head.CompareTo(b.Head)
            : a.Relation != b.Relation ? a.Relation.CompareTo(b.Relation) : a.Tail.CompareTo(b.Tail));
        int distinct = 0;
        for (int i = 0; i < byHead.Length; i++)
        {
            if (distinct == 0 || byHead[i] != byHead[distinct - 1])
            {
                byHead[distinct++] = byHead[i];
            }
        }

        ByHeadRelation = byHead[..distinct];
        FactCount = distinct;

        HeadStart = new int[conceptCount + 1];
        RelationSize = new long[relationCount];
        foreach (Triple f in ByHeadRelation)
        {
            HeadStart[f.Head + 1]++;
            RelationSize[f.Relation]++;
        }

        for (int i = 0; i < conceptCount; i++)
        {
            HeadStart[i + 1] += HeadStart[i];
        }

        // Distinct relations per subject: runs of equal relation inside each subject's range.
        var outRelations = new List<int>();
        _outRelationStart = new int[conceptCount + 1];
        for (int h = 0; h < conceptCount; h++)
        {
            _outRelationStart[h] = outRelations.Count;
            for (int i = HeadStart[h]; i < HeadStart[h + 1]; i++)
            {
                if (i == HeadStart[h] || ByHeadRelation[i].Relation != ByHeadRelation[i - 1].Relation)
                {
                    outRelations.Add(ByHeadRelation[i].Relation);
                }
            }
        }

        _outRelationStart[conceptCount] = outRelations.Count;
        _outRelations = [.. outRelations];

        Triple[] byPair = (Triple[])ByHeadRelation.Clone();
        Array.Sort(byPair, static (a, b) => a.Head != b.Head ? a.Head.CompareTo(b.Head)
            : a.Tail != b.Tail ? a.Tail.CompareTo(b.Tail) : a.Relation.CompareTo(b.Relation));
        _pairTail = new int[distinct];
        _pairRelation = new int[distinct];
        for (int i = 0; i < distinct; i++)
        {
            _pairTail[i] = byPair[i].Tail;
            _pairRelation[i] = byPair[i].Relation;
        }

        _byRelation = (Triple[])ByHeadRelation.Clone();
        Array.Sort(_byRelation, static (a, b) => a.Relation != b.Relation ? a.Relation.CompareTo(b.Relation)
            : a.Head != b.Head ? a.Head.CompareTo(b.Head) : a.Tail.CompareTo(b.Tail));
        _relationStart = new int[relationCount + 1];
        for (int r = 0; r < relationCount; r++)
        {
            _relationStart[r + 1] = _relationStart[r] + (int)RelationSize[r];
        }
    }

    public int ConceptCount { get; }

    public int RelationCount { get; }

    public long FactCount { get; }

    /// <summary>Distinct facts sorted by (head, relation, tail).</summary>
    public Triple[] ByHeadRelation { get; }

    /// <summary>Start of each subject's range in <see cref="ByHeadRelation"/>; length n + 1.</summary>
    public int[] HeadStart { get; }

    /// <summary>Distinct facts per relation.</summary>
    public long[] RelationSize { get; }

    /// <summary>Every fact with subject <paramref name="head"/>.</summary>
    public ReadOnlySpan<Triple> OutEdges(int head) =>
        ByHeadRelation.AsSpan(HeadStart[head], HeadStart[head + 1] - HeadStart[head]);

    /// <summary>The distinct relations <paramref name="head"/> has as subject, ascending.</summary>
    public ReadOnlySpan<int> OutRelations(int head) =>
        _outRelations.AsSpan(_outRelationStart[head], _outRelationStart[head + 1] - _outRelationStart[head]);

    /// <summary>Every fact of one relation, sorted by (head, tail).</summary>
    public ReadOnlySpan<Triple> OfRelation(int relation) =>
        _byRelation.AsSpan(_relationStart[relation], _relationStart[relation + 1] - _relationStart[relation]);

    /// <summary>The relations r with <c>head r tail</c> stored, ascending.</summary>
    public ReadOnlySpan<int> RelationsBetween(int head, int tail)
    {
        int lo = HeadStart[head];
        int hi = HeadStart[head + 1];
        ReadOnlySpan<int> tails = _pairTail.AsSpan(lo, hi - lo);
        int first = LowerBound(tails, tail);
        int last = first;
        while (last < tails.Length && tails[last] == tail)
        {
            last++;
        }

        return _pairRelation.AsSpan(lo + first, last - first);
    }

    private static int LowerBound(ReadOnlySpan<int> sorted, int value)
    {
        int lo = 0;
        int hi = sorted.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
