namespace AssocDB.Engine.Vectors;

/// <summary>
/// A set of row ids as a bitmap: the rows a search may return. The caller resolves whatever selects
/// rows (a metadata filter, say) into one of these once, so kernels test a bit per row instead of
/// calling back into the caller, and a device kernel can upload it as a mask.
/// </summary>
public sealed class RowFilter
{
    private readonly ulong[] _words;

    private RowFilter(ulong[] words, int rowLimit)
    {
        _words = words;
        RowLimit = rowLimit;
    }

    /// <summary>One past the highest row the filter can hold; rows at or beyond it are not allowed.</summary>
    public int RowLimit { get; }

    /// <summary>Number of allowed rows.</summary>
    public int Count => _words.Sum(w => System.Numerics.BitOperations.PopCount(w));

    /// <summary>Whether a row is allowed.</summary>
    public bool Contains(int row) => (uint)row < (uint)RowLimit && (_words[row >> 6] & (1UL << (row & 63))) != 0;

    /// <summary>A filter allowing exactly <paramref name="rows"/>.</summary>
    public static RowFilter FromRows(IEnumerable<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        int[] list = rows.ToArray();
        int limit = list.Length == 0 ? 0 : list.Max() + 1;
        var words = new ulong[(limit + 63) >> 6];
        foreach (int row in list)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(row, nameof(rows));
            words[row >> 6] |= 1UL << (row & 63);
        }

        return new RowFilter(words, limit);
    }

    /// <summary>A filter allowing the rows below <paramref name="rowLimit"/> that satisfy <paramref name="allowed"/>.</summary>
    public static RowFilter FromPredicate(int rowLimit, Func<int, bool> allowed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rowLimit);
        ArgumentNullException.ThrowIfNull(allowed);
        var words = new ulong[(rowLimit + 63) >> 6];
        for (int row = 0; row < rowLimit; row++)
        {
            if (allowed(row))
            {
                words[row >> 6] |= 1UL << (row & 63);
            }
        }

        return new RowFilter(words, rowLimit);
    }

    /// <summary>The filter as one flag per row below <paramref name="rowLimit"/> (to build a device mask).</summary>
    internal bool[] ToMask(int rowLimit)
    {
        var mask = new bool[rowLimit];
        for (int row = 0; row < rowLimit; row++)
        {
            mask[row] = Contains(row);
        }

        return mask;
    }
}
