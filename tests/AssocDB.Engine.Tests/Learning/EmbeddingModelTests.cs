using AssocDB.Engine.Learning;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Learning;

/// <summary>Guards that the model operators are exact inverses of each other, that the batched
/// tensor path computes the same distances as the host path, and that head scoring through the
/// inverse operator equals tail scoring.</summary>
public sealed class EmbeddingModelTests
{
    public static TheoryData<EmbeddingModelKind, DistanceNorm> Models => new()
    {
        { EmbeddingModelKind.TransE, DistanceNorm.L1 },
        { EmbeddingModelKind.TransE, DistanceNorm.L2 },
        { EmbeddingModelKind.RotatE, DistanceNorm.L1 },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void Inverse_undoes_forward_and_head_scoring_equals_tail_scoring(EmbeddingModelKind kind, DistanceNorm norm)
    {
        var model = new EmbeddingModel(kind, 8, norm);
        var random = new Random(3);
        float[] Vector(int length) => [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1))];
        float[] c = Vector(8);
        float[] t = Vector(8);
        float[] r = Vector(model.RelationDimension);

        float[] back = model.Inverse(model.Forward(c, r), r);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(c[i], back[i], 5);
        }

        // d(h + r, t) = d(h, t − r): ranking heads with Inverse(t, r) is the same score.
        Assert.Equal(model.Score(c, r, t), -model.Distance(c, model.Inverse(t, r)), 4);
    }

    [Fact]
    public void TransE_forward_is_translation_and_RotatE_forward_is_rotation()
    {
        var transE = new EmbeddingModel(EmbeddingModelKind.TransE, 2);
        Assert.Equal([4f, 6f], transE.Forward([1f, 2f], [3f, 4f]));

        // (1 + 0i) rotated by π/2 is (0 + 1i): real part first, imaginary part last.
        var rotatE = new EmbeddingModel(EmbeddingModelKind.RotatE, 2);
        float[] rotated = rotatE.Forward([1f, 0f], [MathF.PI / 2]);
        Assert.Equal(0f, rotated[0], 6);
        Assert.Equal(1f, rotated[1], 6);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Batched_distances_match_host_distances(EmbeddingModelKind kind, DistanceNorm norm)
    {
        var model = new EmbeddingModel(kind, 6, norm);
        var random = new Random(5);
        float[] queries = [.. Enumerable.Range(0, 3 * 6).Select(_ => (float)random.NextDouble())];
        float[] concepts = [.. Enumerable.Range(0, 7 * 6).Select(_ => (float)random.NextDouble())];
        using IDisposable scope = NewDisposeScope();
        Tensor all = model.DistanceToAll(tensor(queries, [3, 6]), tensor(concepts, [7, 6]), maxElements: 20);
        float[] got = all.data<float>().ToArray();
        for (int q = 0; q < 3; q++)
        {
            for (int c = 0; c < 7; c++)
            {
                float expected = model.Distance(queries.AsSpan(q * 6, 6), concepts.AsSpan(c * 6, 6));
                Assert.Equal(expected, got[q * 7 + c], 4);
            }
        }
    }

    // libtorch computes l2 distances past 25 rows as a matrix product, which cancels when the
    // distances are small next to the norms: 40 concepts 0.03 apart near (1000, …) came out
    // 0, 0.35, 0.71, … and ten of them tied with the query's own row, so ranks (and MRR) were wrong. Ranked
    // from their centred frame (CentredForRanking), they hold.
    [Fact]
    public void TransE_l2_distances_to_all_hold_far_from_the_origin()
    {
        const int D = 8, Concepts = 40;
        var model = new EmbeddingModel(EmbeddingModelKind.TransE, D, DistanceNorm.L2);
        float[] concepts = new float[Concepts * D];
        for (int c = 0; c < Concepts; c++)
        {
            for (int i = 0; i < D; i++)
            {
                concepts[(c * D) + i] = 1000f + (i == 0 ? c * 0.03f : 0f);
            }
        }

        using IDisposable scope = NewDisposeScope();
        Tensor centred = model.CentredForRanking(tensor(concepts, [Concepts, D]));
        float[] got = model.DistanceToAll(centred.narrow(0, 0, 1), centred).data<float>().ToArray();
        for (int c = 0; c < Concepts; c++)
        {
            double expected = concepts[c * D] - (double)concepts[0];
            Assert.True(Math.Abs(got[c] - expected) <= 1e-4, $"concept {c}: {got[c]}, expected {expected}");
        }
    }
}
