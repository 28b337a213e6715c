using AssocDB.Engine.Model;
using TorchSharp;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// Top-k search over a <see cref="ConceptMatrix"/>: validates a request, picks the kernel for the
/// matrix's device and the batch size, and runs it. On a GPU (or any non-CPU device) that is
/// <see cref="TorchTopKKernel"/>; on a CPU, <see cref="ScanKernel"/> for small batches and small
/// matrices and <see cref="ChunkedGemmKernel"/> for large batches. All of them return what float32
/// brute force returns (ties aside). Stateless apart from its kernels: one instance can serve every
/// matrix and every thread, while each caller holds its matrix's read lock.
/// </summary>
public sealed class VectorSearch
{
    /// <summary>The largest k a search may ask for.</summary>
    public const int MaxK = 10_000;

    private readonly VectorSearchOptions _options;
    private readonly int _scanBatchLimit;

    /// <summary>Creates a searcher.</summary>
    public VectorSearch(VectorSearchOptions? options = null)
    {
        _options = options ?? VectorSearchOptions.Default;
        Scan = new ScanKernel(_options.MaxDegreeOfParallelism);
        Gemm = new ChunkedGemmKernel(Scan, _options.CoarseType, maxDegreeOfParallelism: _options.MaxDegreeOfParallelism);
        Device = new TorchTopKKernel();
        _scanBatchLimit = _options.ScanBatchLimit ?? CrossoverBatch(Gemm.CoarseType);
    }

    /// <summary>The largest batch the scan takes with the coarse pass <paramref name="coarse"/>, from
    /// the kernel bench's --crossover (benchmarks/RESULTS.md, "Vector kernels"): with AVX-VNNI's
    /// products the GEMM wins from 2 queries at n = 1 M but only from 4 at 100 k, so 2 splits the
    /// difference (batches of 3 or more take the GEMM); with AVX-512BW's it wins from 6 at 1 M;
    /// libtorch's float GEMM from 17.</summary>
    internal static int CrossoverBatch(CoarsePrecision coarse) =>
        coarse != CoarsePrecision.Int8 ? 16 : Int8CoarseScorer.FastestProducts == ByteProducts.AvxVnni ? 2 : 5;

    /// <summary>The CPU scan kernel.</summary>
    public ScanKernel Scan { get; }

    /// <summary>The CPU chunked low-precision GEMM kernel.</summary>
    public ChunkedGemmKernel Gemm { get; }

    /// <summary>The device matmul + topk kernel.</summary>
    public TorchTopKKernel Device { get; }

    /// <summary>The kernel a batch of <paramref name="batchSize"/> queries would run on.</summary>
    public ISearchKernel KernelFor(ConceptMatrix matrix, int batchSize, SearchFilter? filter = null)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.Device.type != DeviceType.CPU || !matrix.IsHostResident)
        {
            return Device;
        }

        // A filter that admits few rows would starve the GEMM's candidate lists and force the scan
        // fallback anyway; the scan skips disallowed rows before scoring them.
        bool sparseFilter = filter?.Allowed is { } allowed && allowed.Count * 8L < matrix.RowLimit;
        return batchSize <= _scanBatchLimit || matrix.RowLimit < _options.GemmMinRows || sparseFilter ? Scan : Gemm;
    }

    /// <summary>Finds the top <paramref name="k"/> rows for each query in <paramref name="queries"/>
    /// (row-major, d floats each). Returns InvalidArgument for k outside 1..<see cref="MaxK"/>, a
    /// buffer that is not a non-empty multiple of d, or a non-finite component.</summary>
    public Result<SearchHits[]> Search(ConceptMatrix matrix, ReadOnlySpan<float> queries, int k, SearchFilter? filter = null)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (k is < 1 or > MaxK)
        {
            return EngineError.Invalid("k", $"k must be 1..{MaxK}, got {k}");
        }

        if (queries.IsEmpty || queries.Length % matrix.Dimension != 0)
        {
            return EngineError.Invalid("queries", $"expected a non-empty multiple of d = {matrix.Dimension} floats, got {queries.Length}");
        }

        for (int i = 0; i < queries.Length; i++)
        {
            if (!float.IsFinite(queries[i]))
            {
                return EngineError.Invalid($"queries[{i / matrix.Dimension}]", $"component {i % matrix.Dimension} is not finite");
            }
        }

        int count = queries.Length / matrix.Dimension;
        return KernelFor(matrix, count, filter).Search(matrix, queries, k, filter);
    }
}
