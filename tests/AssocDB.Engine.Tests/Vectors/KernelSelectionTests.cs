using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Which CPU kernel a batch runs on: the scan up to the coarse pass's crossover batch size, the
// GEMM above it, and the scan for matrices too small for the GEMM's fixed costs.
public sealed class KernelSelectionTests : IDisposable
{
    private const int Dimension = 4;

    private readonly ConceptMatrix _large = Filled(VectorSearchOptions.Default.GemmMinRows);
    private readonly ConceptMatrix _small = Filled(VectorSearchOptions.Default.GemmMinRows - 1);

    [Fact]
    public void Float_coarse_pass_takes_batches_above_16()
    {
        var search = new VectorSearch(new VectorSearchOptions(CoarseType: CoarsePrecision.Float32));

        Assert.Same(search.Scan, search.KernelFor(_large, 16));
        Assert.Same(search.Gemm, search.KernelFor(_large, 17));
    }

    [Fact]
    public void Int8_coarse_pass_takes_batches_above_2_with_avx_vnni_and_above_5_without()
    {
        if (!Int8CoarseScorer.IsSupported)
        {
            return;
        }

        var search = new VectorSearch();
        int scanned = Int8CoarseScorer.FastestProducts == ByteProducts.AvxVnni ? 2 : 5;

        Assert.Equal(CoarsePrecision.Int8, search.Gemm.CoarseType);
        Assert.Same(search.Scan, search.KernelFor(_large, scanned));
        Assert.Same(search.Gemm, search.KernelFor(_large, scanned + 1));
    }

    [Fact]
    public void An_explicit_limit_and_a_small_matrix_override_the_crossover()
    {
        var search = new VectorSearch(new VectorSearchOptions(ScanBatchLimit: 100));

        Assert.Same(search.Scan, search.KernelFor(_large, 100));
        Assert.Same(search.Gemm, search.KernelFor(_large, 101));
        Assert.Same(search.Scan, search.KernelFor(_small, 1000));
    }

    public void Dispose()
    {
        _large.Dispose();
        _small.Dispose();
    }

    private static ConceptMatrix Filled(int rows)
    {
        var matrix = new ConceptMatrix(Dimension, CPU, Metric.Dot, StoragePrecision.Float32, initialCapacity: rows);
        var random = new Random(rows);
        float[] vectors = [.. Enumerable.Range(0, rows * Dimension).Select(_ => (float)random.NextDouble())];
        matrix.SetRows([.. Enumerable.Range(0, rows)], vectors);
        return matrix;
    }
}
