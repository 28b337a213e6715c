using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using BenchmarkDotNet.Attributes;

namespace AssocDB.Benchmarks;

/// <summary>BenchmarkDotNet tier for one recall over a relation's key–value memory on a 200 k × 128
/// cosine matrix: the memory is built once, as the collection keeps it between recalls, so what is
/// timed is a call's own work (scoring the rows, the streamed softmax, the weighted sum, the search).</summary>
[MemoryDiagnoser]
public class RecallBenchmarks
{
    private const int Dimension = 128;
    private const int Rows = 200_000;
    private ConceptMatrix _matrix = null!;
    private RecallMemory _memory = null!;
    private float[] _query = null!;
    private readonly VectorSearch _search = new();

    /// <summary>Facts in the relation.</summary>
    [Params(10_000, 1_000_000)]
    public int Facts { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _matrix = BenchData.Matrix(BenchData.UnitVectors(Rows, Dimension, seed: 42), Dimension);
        var random = new Random(5);
        int[] heads = [.. Enumerable.Range(0, Facts).Select(_ => random.Next(Rows))];
        int[] tails = [.. Enumerable.Range(0, Facts).Select(_ => random.Next(Rows))];
        _memory = new RecallMemory(_matrix, heads, tails);
        _query = _matrix.GetRow(heads[0]);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _memory.Dispose();
        _matrix.Dispose();
    }

    [Benchmark]
    public RecallOutcome Forward() => _memory.Recall(_query, RecallDirection.Forward, 32f, 10, _search).Value;

    [Benchmark]
    public RecallOutcome Auto() => _memory.Recall(_query, RecallDirection.Auto, 32f, 10, _search).Value;
}
