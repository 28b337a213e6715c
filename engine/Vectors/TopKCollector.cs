namespace AssocDB.Engine.Vectors;

/// <summary>
/// A running top-k of (score, row) pairs: a binary min-heap whose root is the current worst kept
/// entry, so rejecting a row costs one comparison against <see cref="Threshold"/>. Order is score
/// descending, then row ascending, which makes results deterministic on ties.
/// </summary>
internal sealed class TopKCollector
{
    /// <summary>Entries a collector holds room for before its first is offered.</summary>
    private const int InitialCapacity = 16;

    private float[] _scores;
    private int[] _rows;

    /// <summary>Creates an empty collector that keeps at most <paramref name="k"/> entries. Its
    /// arrays grow with what it keeps: a scan gives every worker a collector per query, and at
    /// k = 10,000 those took 80 kB each before a row was seen (a gigabyte for 256 queries on 64
    /// cores), where a filter leaves each worker a few rows.</summary>
    public TopKCollector(int k)
    {
        K = k;
        _scores = new float[Math.Min(k, InitialCapacity)];
        _rows = new int[_scores.Length];
    }

    /// <summary>Entries kept so far.</summary>
    public int Count { get; private set; }

    /// <summary>The capacity k.</summary>
    public int K { get; }

    /// <summary>The kept rows, in heap order (not sorted).</summary>
    public ReadOnlySpan<int> Rows => _rows.AsSpan(0, Count);

    /// <summary>A score must be at least this to be considered (−∞ until full).</summary>
    public float Threshold => Count < K ? float.NegativeInfinity : _scores[0];

    /// <summary>Whether (a, rowA) ranks before (b, rowB).</summary>
    public static bool Better(float a, int rowA, float b, int rowB) => a > b || (a == b && rowA < rowB);

    /// <summary>Offers an entry; kept when the collector is not full or it beats the worst kept.
    /// NaN scores are never kept.</summary>
    public void Add(float score, int row)
    {
        if (float.IsNaN(score))
        {
            return;
        }

        if (Count < K)
        {
            if (Count == _scores.Length)
            {
                int capacity = (int)Math.Min(K, 2L * _scores.Length);
                Array.Resize(ref _scores, capacity);
                Array.Resize(ref _rows, capacity);
            }

            int i = Count++;
            _scores[i] = score;
            _rows[i] = row;
            SiftUp(i);
        }
        else if (Better(score, row, _scores[0], _rows[0]))
        {
            _scores[0] = score;
            _rows[0] = row;
            SiftDown(0);
        }
    }

    /// <summary>Offers an entry that reaches <paramref name="threshold"/> (a caller's cached
    /// <see cref="Threshold"/>) and is not −∞ (a row no query may return); returns the threshold to
    /// cache next, so a scan over many rejected rows never touches the heap.</summary>
    public float Offer(float score, int row, float threshold)
    {
        if (score >= threshold && !float.IsNegativeInfinity(score))
        {
            Add(score, row);
            return Threshold;
        }

        return threshold;
    }

    /// <summary>Offers every entry of another collector.</summary>
    public void Merge(TopKCollector other)
    {
        for (int i = 0; i < other.Count; i++)
        {
            Add(other._scores[i], other._rows[i]);
        }
    }

    /// <summary>The kept entries, best first.</summary>
    public SearchHits ToHits()
    {
        var rows = _rows.AsSpan(0, Count).ToArray();
        var scores = _scores.AsSpan(0, Count).ToArray();
        var order = new int[Count];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (x, y) => Better(scores[x], rows[x], scores[y], rows[y]) ? -1 : Better(scores[y], rows[y], scores[x], rows[x]) ? 1 : 0);
        var sortedRows = new int[Count];
        var sortedScores = new float[Count];
        for (int i = 0; i < order.Length; i++)
        {
            sortedRows[i] = rows[order[i]];
            sortedScores[i] = scores[order[i]];
        }

        return new SearchHits(sortedRows, sortedScores);
    }

    private bool Worse(int i, int j) => Better(_scores[j], _rows[j], _scores[i], _rows[i]);

    private void SiftUp(int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Worse(i, parent))
            {
                return;
            }

            Swap(i, parent);
            i = parent;
        }
    }

    private void SiftDown(int i)
    {
        while (true)
        {
            int left = (2 * i) + 1;
            if (left >= Count)
            {
                return;
            }

            int worst = left + 1 < Count && Worse(left + 1, left) ? left + 1 : left;
            if (!Worse(worst, i))
            {
                return;
            }

            Swap(i, worst);
            i = worst;
        }
    }

    private void Swap(int i, int j)
    {
        (_scores[i], _scores[j]) = (_scores[j], _scores[i]);
        (_rows[i], _rows[j]) = (_rows[j], _rows[i]);
    }
}
