using AssocDB.Engine.Learning;

namespace AssocDB.Engine.Tests.Learning;

/// <summary>Guards that the closed-form relation vector (mean of tail − head) recovers the true
/// translation of translation-consistent data within the noise, and that removals undo additions.</summary>
public sealed class RelationVectorEstimatorTests
{
    private const int Dimension = 32;
    private const float Noise = 0.05f;

    [Fact]
    public void Recovers_true_relation_vectors_within_noise()
    {
        (float[] concepts, float[] trueRelations, Triple[] facts) = Synthetic(relations: 4, factsPerRelation: 400, seed: 1);
        float[] estimated = RelationVectorEstimator.Estimate(facts, concepts, 4, Dimension);

        // Each coordinate of the mean of 400 noise draws has standard deviation Noise/√400 = 0.0025;
        // the whole vector's error norm is about 0.0025·√32 ≈ 0.014. Allow 3×.
        for (int r = 0; r < 4; r++)
        {
            double error = Distance(estimated.AsSpan(r * Dimension, Dimension), trueRelations.AsSpan(r * Dimension, Dimension));
            Assert.True(error < 0.045, $"relation {r}: error {error}");
        }
    }

    [Fact]
    public void Removing_facts_gives_the_estimate_of_the_remaining_ones()
    {
        (float[] concepts, _, Triple[] facts) = Synthetic(relations: 2, factsPerRelation: 200, seed: 2);
        var estimator = new RelationVectorEstimator(Dimension);
        estimator.AddRange(facts, concepts);
        foreach (Triple f in facts[..150])
        {
            Assert.True(estimator.Remove(f.Relation, Row(concepts, f.Head), Row(concepts, f.Tail)));
        }

        float[] expected = RelationVectorEstimator.Estimate(facts[150..], concepts, 2, Dimension);
        float[] actual = new float[Dimension];
        for (int r = 0; r < 2; r++)
        {
            Assert.Equal(facts[150..].Count(f => f.Relation == r), estimator.Count(r));
            Assert.True(estimator.TryGetVector(r, actual));
            Assert.True(Distance(actual, expected.AsSpan(r * Dimension, Dimension)) < 1e-5);
        }
    }

    [Fact]
    public void A_relation_without_facts_has_no_vector()
    {
        var estimator = new RelationVectorEstimator(Dimension);
        float[] head = new float[Dimension];
        float[] tail = Enumerable.Repeat(1f, Dimension).ToArray();
        estimator.Add(3, head, tail);
        Assert.True(estimator.Remove(3, head, tail));
        Assert.False(estimator.Remove(3, head, tail));
        Assert.False(estimator.TryGetVector(3, new float[Dimension]));
        Assert.False(estimator.TryGetVector(99, new float[Dimension]));
    }

    private static (float[] Concepts, float[] Relations, Triple[] Facts) Synthetic(int relations, int factsPerRelation, int seed)
    {
        var random = new Random(seed);
        float Gaussian() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        float[] trueRelations = new float[relations * Dimension];
        for (int i = 0; i < trueRelations.Length; i++)
        {
            trueRelations[i] = Gaussian();
        }

        // Heads are random; each tail is a fresh concept placed at head + r + noise.
        float[] concepts = new float[relations * factsPerRelation * 2 * Dimension];
        var facts = new List<Triple>();
        int next = 0;
        for (int r = 0; r < relations; r++)
        {
            for (int k = 0; k < factsPerRelation; k++)
            {
                int head = next++;
                int tail = next++;
                for (int i = 0; i < Dimension; i++)
                {
                    concepts[head * Dimension + i] = Gaussian();
                    concepts[tail * Dimension + i] = concepts[head * Dimension + i] + trueRelations[r * Dimension + i] + Noise * Gaussian();
                }

                facts.Add(new Triple(head, r, tail));
            }
        }

        return (concepts, trueRelations, [.. facts]);
    }

    private static ReadOnlySpan<float> Row(float[] matrix, int row) => matrix.AsSpan(row * Dimension, Dimension);

    private static double Distance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += (a[i] - b[i]) * (double)(a[i] - b[i]);
        }

        return Math.Sqrt(sum);
    }
}
