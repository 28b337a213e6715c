using AssocDB.Engine.Vectors;
using BenchmarkDotNet.Attributes;

namespace AssocDB.Benchmarks;

/// <summary>BenchmarkDotNet tier for the search kernels on a 200 k × 128 cosine matrix (kept below
/// the end-to-end bench's 1 M so a full run stays in minutes): one query and small batches on the
/// scan, a batch of 256 on the GEMM path in each coarse type, and the device kernel on CPU.</summary>
[MemoryDiagnoser]
public class KernelBenchmarks
{
    private const int Dimension = 128;
    private ConceptMatrix _matrix = null!;
    private float[] _queries = null!;
    private ScanKernel _scan = null!;
    private TorchTopKKernel _torch = null!;
    private Dictionary<CoarsePrecision, ChunkedGemmKernel> _gemm = null!;

    /// <summary>Rows in the matrix.</summary>
    [Params(200_000)]
    public int Rows { get; set; }

    /// <summary>Results per query.</summary>
    [Params(10)]
    public int K { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _matrix = BenchData.Matrix(BenchData.UnitVectors(Rows, Dimension, seed: 42), Dimension);
        _queries = BenchData.UnitVectors(256, Dimension, seed: 7);
        _scan = new ScanKernel();
        _torch = new TorchTopKKernel();
        _gemm = CoarseTypes().ToDictionary(p => p, p => new ChunkedGemmKernel(_scan, p));
    }

    [GlobalCleanup]
    public void Cleanup() => _matrix.Dispose();

    [Benchmark(Baseline = true)]
    public SearchHits[] ScanOneQuery() => _scan.Search(_matrix, _queries.AsSpan(0, Dimension), K);

    [Benchmark]
    public SearchHits[] ScanEightQueries() => _scan.Search(_matrix, _queries.AsSpan(0, 8 * Dimension), K);

    [Benchmark]
    public SearchHits[] TorchOneQuery() => _torch.Search(_matrix, _queries.AsSpan(0, Dimension), K);

    /// <summary>The coarse passes this CPU runs: the int8 pass needs AVX-512, and a kernel built
    /// for it elsewhere refuses to start.</summary>
    public static IEnumerable<CoarsePrecision> CoarseTypes() =>
        Enum.GetValues<CoarsePrecision>().Where(p => p != CoarsePrecision.Auto && (p != CoarsePrecision.Int8 || Int8CoarseScorer.IsSupported));

    [Benchmark]
    [ArgumentsSource(nameof(CoarseTypes))]
    public SearchHits[] GemmBatch256(CoarsePrecision coarse) => _gemm[coarse].Search(_matrix, _queries, K);
}
