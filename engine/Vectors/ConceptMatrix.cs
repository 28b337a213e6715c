using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The concept matrix <c>W [capacity, d]</c>: one tensor on the device whose row <c>i</c> is the
/// vector of concept id <c>i</c>, exactly as stored (so reads are bit-exact). It is the single owner
/// of that tensor. Rows that are free (never set, or removed) are tracked host-side and are never
/// returned by search.
/// </summary>
/// <remarks>
/// Not thread-safe on its own: the owning collection mutates it under its write lock and reads it
/// under its read lock. Growth doubles the capacity, so a run of inserts costs amortized O(1)
/// copies per row.
/// </remarks>
public sealed class ConceptMatrix : IDisposable
{
    private Tensor _weights;
    private bool[] _live;

    /// <summary>Creates an empty matrix of the given dimension on a device.</summary>
    public ConceptMatrix(int dimension, Device device, int initialCapacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialCapacity, 1);
        Dimension = dimension;
        Device = device;
        _weights = zeros(initialCapacity, dimension, ScalarType.Float32, device);
        _live = new bool[initialCapacity];
    }

    /// <summary>Vector dimension d.</summary>
    public int Dimension { get; }

    /// <summary>The device the matrix lives on.</summary>
    public Device Device { get; }

    /// <summary>Rows allocated on the device.</summary>
    public int Capacity => _live.Length;

    /// <summary>Rows holding a live concept.</summary>
    public int LiveCount { get; private set; }

    /// <summary>One past the highest row ever set; search never looks beyond it.</summary>
    public int RowLimit { get; private set; }

    /// <summary>The weights tensor. Borrowed: callers must not dispose or keep it across a write.</summary>
    internal Tensor Weights => _weights;

    /// <summary>Whether a row holds a live concept.</summary>
    public bool IsLive(int row) => row >= 0 && row < RowLimit && _live[row];

    /// <summary>Writes rows (ids) with vectors given row-major in <paramref name="vectors"/>.</summary>
    public void SetRows(ReadOnlySpan<int> rows, ReadOnlySpan<float> vectors)
    {
        if (vectors.Length != rows.Length * Dimension)
        {
            throw new ArgumentException($"expected {rows.Length * Dimension} floats, got {vectors.Length}", nameof(vectors));
        }

        if (rows.IsEmpty)
        {
            return;
        }

        int maxRow = 0;
        foreach (int row in rows)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(row, nameof(rows));
            maxRow = Math.Max(maxRow, row);
        }

        EnsureCapacity(maxRow + 1);
        using (NewDisposeScope())
        {
            Tensor source = tensor(vectors.ToArray(), [rows.Length, Dimension], ScalarType.Float32).to(Device);
            Tensor index = tensor(rows.ToArray(), ScalarType.Int64).to(Device);
            _weights.index_copy_(0, index, source);
        }

        foreach (int row in rows)
        {
            if (!_live[row])
            {
                _live[row] = true;
                LiveCount++;
            }
        }

        RowLimit = Math.Max(RowLimit, maxRow + 1);
    }

    /// <summary>Writes one row.</summary>
    public void Set(int row, ReadOnlySpan<float> vector) => SetRows([row], vector);

    /// <summary>Frees a row: it is zeroed and never returned by search until set again.</summary>
    public void Remove(int row)
    {
        if (!IsLive(row))
        {
            return;
        }

        _live[row] = false;
        LiveCount--;
        using (NewDisposeScope())
        {
            _weights[row].zero_();
        }
    }

    /// <summary>Copies a live row to a managed array.</summary>
    public float[] GetRow(int row)
    {
        if (!IsLive(row))
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} is not live");
        }

        using (NewDisposeScope())
        {
            return _weights[row].cpu().data<float>().ToArray();
        }
    }

    /// <summary>Copies several rows (live or not) into one row-major managed array.</summary>
    public float[] GetRows(ReadOnlySpan<int> rows)
    {
        using (NewDisposeScope())
        {
            Tensor index = tensor(rows.ToArray(), ScalarType.Int64).to(Device);
            return _weights.index_select(0, index).cpu().data<float>().ToArray();
        }
    }

    private void EnsureCapacity(int rows)
    {
        if (rows <= Capacity)
        {
            return;
        }

        int capacity = Capacity;
        while (capacity < rows)
        {
            capacity = checked(capacity * 2);
        }

        Tensor grown = zeros(capacity, Dimension, ScalarType.Float32, Device);
        using (NewDisposeScope())
        {
            grown.narrow(0, 0, Capacity).copy_(_weights);
        }

        _weights.Dispose();
        _weights = grown;
        Array.Resize(ref _live, capacity);
    }

    /// <inheritdoc />
    public void Dispose() => _weights.Dispose();
}
