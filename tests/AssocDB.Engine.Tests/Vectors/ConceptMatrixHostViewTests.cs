using System.Globalization;
using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using TorchSharp;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards that a CPU matrix keeps its per-row norms, scales and offsets once (the spans the host
// kernels read are views of the tensors the torch kernels read) and the int8 pass's max magnitudes
// current, through writes, deletes and growth; and that a grown W sits on huge pages.
public sealed class ConceptMatrixHostViewTests
{
    private const int Dimension = 8;

    [Fact]
    public void Per_row_spans_are_views_of_the_per_row_tensors_through_deletes_and_growth()
    {
        var random = new Random(5);
        using var matrix = new ConceptMatrix(Dimension, CPU, Metric.L2, StoragePrecision.Float32, initialCapacity: 4);
        matrix.SetRows([0, 1, 2], VectorFixtures.Gaussian(random, 3, Dimension));
        matrix.Remove(1);
        matrix.SetRows([9], VectorFixtures.Gaussian(random, 1, Dimension));
        Assert.Equal(16, matrix.Capacity);

        AssertEqual(matrix.NormsOnDevice, matrix.Norms);
        AssertEqual(matrix.ScalesOnDevice, matrix.Scales);
        AssertEqual(matrix.OffsetsOnDevice, matrix.Offsets);
        // Free rows, removed or never set, read as −∞ on the host too.
        Assert.Equal(float.NegativeInfinity, matrix.Offsets[1]);
        Assert.Equal(float.NegativeInfinity, matrix.Offsets[5]);

        // A value written through the tensor shows in the span: one copy, not two kept in step.
        // An explicit Scalar, held through the call: an implicit one may be finalized during it (see TorchScalars).
        using (Tensor scale = matrix.ScalesOnDevice[0])
        using (Scalar written = 42f.ToScalar())
        {
            scale.fill_(written);
        }

        Assert.Equal(42f, matrix.Scales[0]);
    }

    // The int8 pass derives each row's quantization step from the kept max|w_i|; one left stale by an
    // overwrite would let a larger coordinate overflow its byte.
    [Fact]
    public void Kept_max_magnitudes_follow_writes_overwrites_deletes_and_growth()
    {
        if (!Int8CoarseScorer.IsSupported)
        {
            return;
        }

        var random = new Random(6);
        using var matrix = new ConceptMatrix(37, CPU, Metric.Dot, StoragePrecision.Float32, initialCapacity: 2);
        float[] vectors = VectorFixtures.Gaussian(random, 5, 37);
        matrix.SetRows([0, 1, 2, 3, 4], vectors);
        float[] larger = VectorFixtures.Gaussian(random, 1, 37);
        larger[36] = -50f;
        matrix.Set(2, larger);
        matrix.Remove(3);

        for (int row = 0; row < 5; row++)
        {
            float expected = row == 3 ? 0 : matrix.GetRow(row).Max(MathF.Abs);
            Assert.Equal(expected, matrix.MaxMagnitudes[row]);
        }

        Assert.Equal(50f, matrix.MaxMagnitudes[2]);
    }

    private static void AssertEqual(Tensor onDevice, ReadOnlySpan<float> host) =>
        Assert.Equal(onDevice.data<float>().ToArray(), host.ToArray());

    // Scans read W in place; on 4 KiB pages every 8 rows cost a TLB miss. Growth advises huge pages
    // before the new W is first written. The test reads the advice itself (the mapping's "hg" flag),
    // not the huge pages the kernel then found, which depend on free memory and on its THP mode.
    [Fact]
    public unsafe void A_grown_matrix_is_advised_onto_huge_pages()
    {
        const string Setting = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (!OperatingSystem.IsLinux() || !File.Exists(Setting))
        {
            return; // no transparent huge pages on this host: the advice is a no-op by design
        }

        const int D = 128;
        const int Rows = 64 * 1024; // 32 MiB of W, the smallest allocation advised
        using var matrix = new ConceptMatrix(D, CPU, Metric.Cosine, StoragePrecision.Float32, initialCapacity: 1024);
        Assert.DoesNotContain("hg", VmFlagsAt((long)matrix.HostPointer + (512L * D * sizeof(float))));
        matrix.SetRows(Enumerable.Range(0, Rows).ToArray(), VectorFixtures.Gaussian(new Random(3), Rows, D));

        long middle = (long)matrix.HostPointer + ((long)Rows * D * sizeof(float) / 2);
        Assert.Contains("hg", VmFlagsAt(middle));
    }

    /// <summary>The VmFlags of the /proc/self/smaps mapping that holds <paramref name="address"/>.</summary>
    private static string[] VmFlagsAt(long address)
    {
        bool holds = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && long.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, null, out long first)
                && long.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, null, out long last))
            {
                holds = address >= first && address < last;
            }
            else if (holds && line.StartsWith("VmFlags:", StringComparison.Ordinal))
            {
                return line["VmFlags:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            }
        }

        throw new InvalidOperationException($"no mapping holds 0x{address:x}");
    }
}
