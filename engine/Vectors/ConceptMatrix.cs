using AssocDB.Engine.Model;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The concept matrix <c>W [capacity, d]</c>: one tensor on the device whose row <c>i</c> is the
/// vector of concept id <c>i</c>, exactly as stored (so reads are bit-exact). It is the single owner
/// of that tensor and of the per-row data search needs alongside it. Rows that are free (never set,
/// or removed) are tracked host-side and are never returned by search.
/// </summary>
/// <remarks>
/// <para>Not thread-safe on its own: the owning collection mutates it under its write lock and reads
/// it (searches included) under its read lock. Growth doubles the capacity, so a run of inserts costs
/// amortized O(1) copies per row.</para>
/// <para>W is never normalized in place, because reads must return what was written. Instead each
/// row keeps a norm and a metric-specific scale and offset, so every kernel scores a row as
/// <c>(w·q̃)·scale + offset − qOffset</c> (see <see cref="QueryBatch"/>). A removed row's offset is
/// −∞ on the device, so device-side kernels rank it last without a separate mask.</para>
/// <para>With a <see cref="StoragePrecision"/> other than float32 the matrix also keeps a search copy
/// of the normalized rows <c>w/‖w‖</c> in that element type, which the low-precision GEMM kernel
/// scans before it re-ranks candidates in float32 against W. W itself stays float32: it is the
/// source of truth for reads and for exact scores, so lowering precision does not shrink memory
/// (the copy adds half of W's again in float16), and it speeds up only that kernel's coarse pass
/// where it takes the copy: its default on CPUs without AVX-512, where int8 is not available (see
/// <see cref="CoarsePrecision.Auto"/>); a GPU scans W.</para>
/// </remarks>
public sealed class ConceptMatrix : IDisposable
{
    private Tensor _weights;
    private nint _hostPointer;
    private nint _normsPointer;
    private nint _scalesPointer;
    private nint _offsetsPointer;
    private int _perRowLength;
    private Tensor _normsOnDevice;
    private Tensor _scalesOnDevice;
    private Tensor _offsetsOnDevice;
    private Tensor? _searchCopy;
    private bool[] _live;

    /// <summary>max|w_i| per row, for the int8 pass's quantization step; null where that pass cannot
    /// run. Kept at write time because finding it was a third of quantizing a row per batch.</summary>
    private float[]? _maxMagnitudes;

    /// <summary>Rows of W below this hold written or zeroed values; rows above it may be
    /// uninitialized memory, which no reader reaches because every reader stops at RowLimit.</summary>
    private int _initializedRows;

    /// <summary>Creates an empty float32 matrix scored by cosine similarity.</summary>
    public ConceptMatrix(int dimension, Device device, int initialCapacity = 1024)
        : this(dimension, device, Metric.Cosine, StoragePrecision.Float32, initialCapacity)
    {
    }

    /// <summary>Creates an empty matrix of the given dimension, metric and search precision on a device.</summary>
    public ConceptMatrix(int dimension, Device device, Metric metric, StoragePrecision precision, int initialCapacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialCapacity, 1);
        Dimension = dimension;
        Device = device;
        Metric = metric;
        Precision = precision;
        _weights = device.type == TorchSharp.DeviceType.CPU
            ? HugePageBacked(empty(initialCapacity, dimension, ScalarType.Float32, device)).fill_(TorchScalars.Zero) // fill_ returns this tensor; zero_ a second handle
            : zeros(initialCapacity, dimension, ScalarType.Float32, device);
        IsHostResident = device.type == TorchSharp.DeviceType.CPU && _weights.is_contiguous();
        _hostPointer = HostAddress(_weights);
        _normsOnDevice = zeros(initialCapacity, ScalarType.Float32, device);
        _scalesOnDevice = zeros(initialCapacity, ScalarType.Float32, device);
        _offsetsOnDevice = full(initialCapacity, TorchScalars.NegativeInfinity, ScalarType.Float32, device);
        CacheHostViews();
        _searchCopy = SearchCopyType is { } type ? zeros(initialCapacity, dimension, type, device) : null;
        _initializedRows = initialCapacity;
        _live = new bool[initialCapacity];
        _maxMagnitudes = IsHostResident && Int8CoarseScorer.IsSupported ? new float[initialCapacity] : null;
    }

    /// <summary>Vector dimension d.</summary>
    public int Dimension { get; }

    /// <summary>The device the matrix lives on.</summary>
    public Device Device { get; }

    /// <summary>How rows are scored against a query.</summary>
    public Metric Metric { get; }

    /// <summary>Element type of the search copy (float32: no copy, search reads W directly).</summary>
    public StoragePrecision Precision { get; }

    /// <summary>Rows allocated on the device.</summary>
    public int Capacity => _live.Length;

    /// <summary>Rows holding a live concept.</summary>
    public int LiveCount { get; private set; }

    /// <summary>One past the highest row ever set; search never looks beyond it.</summary>
    public int RowLimit { get; private set; }

    /// <summary>Counts writes, so a reader can tell that what it derived from the matrix is stale.</summary>
    public long Version { get; private set; }

    /// <summary>The weights tensor. Borrowed: callers must not dispose or keep it across a write.</summary>
    internal Tensor Weights => _weights;

    /// <summary>‖w‖ per row (0 for free rows), on the device. Borrowed like <see cref="Weights"/>.</summary>
    internal Tensor NormsOnDevice => _normsOnDevice;

    /// <summary>Per-row score scale on the device (see <see cref="QueryBatch"/>). Borrowed.</summary>
    internal Tensor ScalesOnDevice => _scalesOnDevice;

    /// <summary>Per-row score offset on the device, −∞ for free rows. Borrowed.</summary>
    internal Tensor OffsetsOnDevice => _offsetsOnDevice;

    /// <summary>Normalized rows in <see cref="Precision"/>, or null for float32. Borrowed.</summary>
    internal Tensor? SearchCopy => _searchCopy;

    /// <summary><see cref="NormsOnDevice"/> read in place in host memory; valid up to
    /// <see cref="RowLimit"/> and until the next write. CPU device only (see <see cref="HostView"/>).</summary>
    internal ReadOnlySpan<float> Norms => HostView(_normsPointer);

    /// <summary><see cref="ScalesOnDevice"/> read in place, like <see cref="Norms"/>.</summary>
    internal ReadOnlySpan<float> Scales => HostView(_scalesPointer);

    /// <summary><see cref="OffsetsOnDevice"/> read in place, like <see cref="Norms"/>; −∞ for free rows.</summary>
    internal ReadOnlySpan<float> Offsets => HostView(_offsetsPointer);

    /// <summary>max|w_i| per row (0 for free rows), as <see cref="Int8CoarseScorer.MaxMagnitude"/>
    /// finds it; valid up to <see cref="RowLimit"/>. Only where the int8 pass runs.</summary>
    internal ReadOnlySpan<float> MaxMagnitudes => _maxMagnitudes ?? throw new InvalidOperationException("max magnitudes are kept only where the int8 pass runs");

    /// <summary>Host liveness per row.</summary>
    internal ReadOnlySpan<bool> LiveRows => _live;

    /// <summary>Whether W's memory can be read directly from the host (a contiguous CPU tensor).</summary>
    /// <remarks>W is created contiguous and only ever replaced by a contiguous copy, so this is fixed
    /// per device; caching it (and the pointer) keeps per-row reads free of native calls.</remarks>
    internal bool IsHostResident { get; }

    /// <summary>Pointer to row 0 of W in host memory. Valid only while <see cref="IsHostResident"/>
    /// and until the next write (growth moves the tensor).</summary>
    internal unsafe float* HostPointer => (float*)_hostPointer;

    private unsafe nint HostAddress(Tensor weights) => IsHostResident ? (nint)TensorMemory.Float32Pointer(weights) : 0;

    /// <summary>
    /// A per-row tensor's memory as a span. On a CPU device that tensor is host memory already, so
    /// the host kernels read it in place rather than from a second copy, which cost 12 bytes a row
    /// (2.3 % of W at d = 128). On any other device this throws: no host kernel runs there (they
    /// all need <see cref="IsHostResident"/>), so a host copy would only cost memory and a
    /// transfer per write. The addresses are cached when the tensors are made (as W's is): kernels
    /// read these spans per chunk, and asking libtorch each time cost native calls and garbage.
    /// </summary>
    private unsafe ReadOnlySpan<float> HostView(nint pointer) => pointer != 0
        ? new((float*)pointer, _perRowLength)
        : throw new InvalidOperationException("per-row terms are readable from the host only on a CPU device");

    private unsafe void CacheHostViews()
    {
        bool host = Device.type == TorchSharp.DeviceType.CPU;
        _normsPointer = host ? (nint)TensorMemory.Float32Pointer(_normsOnDevice) : 0;
        _scalesPointer = host ? (nint)TensorMemory.Float32Pointer(_scalesOnDevice) : 0;
        _offsetsPointer = host ? (nint)TensorMemory.Float32Pointer(_offsetsOnDevice) : 0;
        _perRowLength = (int)_normsOnDevice.shape[0];
    }

    /// <summary>Whether a row holds a live concept.</summary>
    public bool IsLive(int row) => row >= 0 && row < RowLimit && _live[row];

    /// <summary>
    /// Asks the CPU to start loading a row held in host memory, and its live flag, ahead of a
    /// <see cref="RowView"/> (writes fetch the rows of random concepts one fact after another). Up
    /// to the first <see cref="PrefetchedRowBytes"/> are fetched: the CPU's own prefetcher follows a
    /// longer row. Does nothing for rows at or past <see cref="RowLimit"/>, elsewhere, or where the
    /// CPU has no prefetch instruction.
    /// </summary>
    public unsafe void Prefetch(int row)
    {
        // Bounds only: whether the row is live would be a load of its own, as likely to miss; its
        // flag, which RowView reads, is fetched with the row instead.
        if (!CacheHint.Supported || !IsHostResident || (uint)row >= (uint)RowLimit)
        {
            return;
        }

        CacheHint.Prefetch(ref _live[row]);
        byte* start = (byte*)(HostPointer + ((long)row * Dimension));
        int bytes = Math.Min(Dimension * sizeof(float), PrefetchedRowBytes);
        for (int offset = 0; offset < bytes; offset += CacheLineBytes)
        {
            CacheHint.Prefetch(start + offset);
        }
    }

    private const int CacheLineBytes = 64;
    private const int PrefetchedRowBytes = 4 * CacheLineBytes;

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
        var norms = new float[rows.Length];
        var scales = new float[rows.Length];
        var offsets = new float[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            // The norm is summed in double so that it does not depend on summation order; every
            // kernel reads the same rounded float afterwards.
            double squared = 0;
            foreach (float x in vectors.Slice(i * Dimension, Dimension))
            {
                squared += (double)x * x;
            }

            norms[i] = (float)Math.Sqrt(squared);
            (scales[i], offsets[i]) = ScaleAndOffset(squared);
        }

        if (IsHostResident)
        {
            WriteInPlace(rows, vectors, maxRow, norms, scales, offsets);
        }

        if (!IsHostResident || _searchCopy is not null)
        {
            using (NewDisposeScope())
            {
                Tensor source = tensor(vectors.ToArray(), [rows.Length, Dimension], ScalarType.Float32).to(Device);
                Tensor index = tensor(rows.ToArray(), ScalarType.Int64).to(Device);
                Tensor normTensor = tensor(norms).to(Device);
                if (!IsHostResident)
                {
                    _weights.index_copy_(0, index, source);
                    _normsOnDevice.index_copy_(0, index, normTensor);
                    _scalesOnDevice.index_copy_(0, index, tensor(scales).to(Device));
                    _offsetsOnDevice.index_copy_(0, index, tensor(offsets).to(Device));
                }

                if (_searchCopy is not null)
                {
                    // Normalized rows cannot overflow float16 and keep bfloat16's relative error
                    // uniform, which is what the re-rank bound in ChunkedGemmKernel assumes.
                    // Divided, not multiplied by a reciprocal: 1/ε overflows, and 0·∞ made a zero row NaN,
                    // which the coarse pass never offers (so it was never returned).
                    Tensor divisors = normTensor.clamp_min(TorchScalars.FloatEpsilon).unsqueeze(1);
                    _searchCopy.index_copy_(0, index, (source / divisors).to(_searchCopy.dtype));
                }
            }
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
        Version++;
    }

    /// <summary>Writes one row.</summary>
    public void Set(int row, ReadOnlySpan<float> vector) => SetRows([row], vector);

    /// <summary>
    /// Writes rows straight into the tensors' host memory. Staging them in temporary tensors would
    /// cost a copy per batch and leave freed native buffers that the C allocator keeps resident.
    /// </summary>
    private unsafe void WriteInPlace(ReadOnlySpan<int> rows, ReadOnlySpan<float> vectors, int maxRow, float[] norms, float[] scales, float[] offsets)
    {
        int d = Dimension;
        float* w = HostPointer;
        for (; _initializedRows <= maxRow; _initializedRows++)
        {
            // Rows between the last one written and this batch's highest become readable below
            // RowLimit, so their uninitialized memory is zeroed first.
            new Span<float>(w + ((long)_initializedRows * d), d).Clear();
        }

        float* normsOnDevice = TensorMemory.Float32Pointer(_normsOnDevice);
        float* scalesOnDevice = TensorMemory.Float32Pointer(_scalesOnDevice);
        float* offsetsOnDevice = TensorMemory.Float32Pointer(_offsetsOnDevice);
        for (int i = 0; i < rows.Length; i++)
        {
            int row = rows[i];
            vectors.Slice(i * d, d).CopyTo(new Span<float>(w + ((long)row * d), d));
            normsOnDevice[row] = norms[i];
            scalesOnDevice[row] = scales[i];
            offsetsOnDevice[row] = offsets[i];
            if (_maxMagnitudes is not null)
            {
                _maxMagnitudes[row] = Int8CoarseScorer.MaxMagnitude(w + ((long)row * d), d);
            }
        }
    }

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
            _normsOnDevice[row].zero_();
            _scalesOnDevice[row].zero_();
            _offsetsOnDevice[row].fill_(TorchScalars.NegativeInfinity);
            _searchCopy?[row].zero_();
        }

        _maxMagnitudes?[row] = 0;

        Version++;
    }

    /// <summary>Copies a live row to a managed array.</summary>
    public float[] GetRow(int row)
    {
        var vector = new float[Dimension];
        ReadRow(row, vector);
        return vector;
    }

    /// <summary>Copies a live row into <paramref name="destination"/> (d floats). On the CPU it reads
    /// the tensor's memory directly, so per-row reads in write paths cost a copy, not a tensor op.</summary>
    public void ReadRow(int row, Span<float> destination) => RowView(row, destination).CopyTo(destination);

    /// <summary>A live row: in place in host memory when W lives there (valid until the next write),
    /// otherwise copied into <paramref name="scratch"/> (d floats).</summary>
    public unsafe ReadOnlySpan<float> RowView(int row, Span<float> scratch)
    {
        if (!IsLive(row))
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"row {row} is not live");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(scratch.Length, Dimension, nameof(scratch));
        if (IsHostResident)
        {
            return new ReadOnlySpan<float>(HostPointer + ((long)row * Dimension), Dimension);
        }

        using (NewDisposeScope())
        {
            _weights[row].cpu().data<float>().ToArray().CopyTo(scratch);
        }

        return scratch[..Dimension];
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

    /// <inheritdoc />
    public void Dispose()
    {
        // The cached addresses go first, so that a late reader fails instead of reading freed memory.
        _hostPointer = _normsPointer = _scalesPointer = _offsetsPointer = 0;
        _weights.Dispose();
        _normsOnDevice.Dispose();
        _scalesOnDevice.Dispose();
        _offsetsOnDevice.Dispose();
        _searchCopy?.Dispose();
    }

    /// <summary>The metric's per-row constants: cosine divides by ‖w‖, l2 doubles the dot product and
    /// subtracts ‖w‖² (the query's ‖q‖² is subtracted per query), dot uses the product as is.</summary>
    private (float Scale, float Offset) ScaleAndOffset(double squaredNorm) => Metric switch
    {
        Metric.Cosine => (squaredNorm > 0 ? (float)(1.0 / Math.Sqrt(squaredNorm)) : 0f, 0f),
        Metric.Dot => (1f, 0f),
        Metric.L2 => (2f, (float)-squaredNorm),
        _ => throw new InvalidOperationException($"unknown metric {Metric}"),
    };

    private ScalarType? SearchCopyType => Precision switch
    {
        StoragePrecision.Float32 => null,
        StoragePrecision.Float16 => ScalarType.Float16,
        StoragePrecision.BFloat16 => ScalarType.BFloat16,
        _ => throw new InvalidOperationException($"unknown precision {Precision}"),
    };

    private void EnsureCapacity(int rows)
    {
        if (rows <= Capacity)
        {
            return;
        }

        int old = Capacity;
        int capacity = old;
        while (capacity < rows)
        {
            capacity = checked(capacity * 2);
        }

        // On the host W grows without zeroing: its spare rows stay untouched, so they take no
        // resident memory until written (WriteInPlace zeroes rows as RowLimit reaches them).
        _weights = IsHostResident
            ? Grow(_weights, HugePageBacked(empty(capacity, Dimension, _weights.dtype, Device)), _initializedRows)
            : Grow(_weights, zeros(capacity, Dimension, _weights.dtype, Device), old);
        _hostPointer = HostAddress(_weights);
        _normsOnDevice = Grow(_normsOnDevice, zeros(capacity, ScalarType.Float32, Device), old);
        _scalesOnDevice = Grow(_scalesOnDevice, zeros(capacity, ScalarType.Float32, Device), old);
        _offsetsOnDevice = Grow(_offsetsOnDevice, full(capacity, TorchScalars.NegativeInfinity, ScalarType.Float32, Device), old);
        CacheHostViews();
        if (_searchCopy is not null)
        {
            _searchCopy = Grow(_searchCopy, zeros(capacity, Dimension, _searchCopy.dtype, Device), old);
        }

        Array.Resize(ref _live, capacity);
        if (_maxMagnitudes is not null)
        {
            Array.Resize(ref _maxMagnitudes, capacity);
        }
    }

    /// <summary>Advises huge pages for a freshly allocated (untouched) host tensor: every pass over
    /// W then walks a 2 MiB page table entry where it would walk 512.</summary>
    private static unsafe Tensor HugePageBacked(Tensor untouched)
    {
        TensorMemory.AdviseHugePages((nint)TensorMemory.Float32Pointer(untouched), untouched.NumberOfElements * sizeof(float));
        return untouched;
    }

    private static Tensor Grow(Tensor current, Tensor grown, int rows)
    {
        using (NewDisposeScope())
        {
            grown.narrow(0, 0, rows).copy_(current.narrow(0, 0, rows));
        }

        current.Dispose();
        return grown;
    }
}
