using System.Numerics;
using AssocDB.Engine.Learning;

namespace AssocDB.Engine.Tests.Learning;

/// <summary>Guards that the closed-form relation vector (mean of tail − head) recovers the true
/// translation of translation-consistent data within the noise, and that removals undo additions
/// exactly, whatever the history, so a reopen that rebuilds the sums gives the same vectors.</summary>
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
    public void Mixed_scale_adds_and_removes_leave_no_drift_and_match_a_rebuild()
    {
        // A tenth of the concepts are 1e8 times larger than the rest. 100,000 seeded adds and removes,
        // then every fact touching a large concept is removed: plain double sums kept their rounding
        // residue (up to 256 float ulps off the true mean, and unlike a rebuild in 231 of 256 components).
        const int Concepts = 500, Pool = 3000, Relations = 4;
        var random = new Random(7);
        float[] concepts = new float[Concepts * Dimension];
        for (int c = 0; c < Concepts; c++)
        {
            double scale = c % 10 == 0 ? 1e4 : 1e-4;
            for (int i = 0; i < Dimension; i++)
            {
                concepts[c * Dimension + i] = (float)(scale * ((random.NextDouble() * 2) - 1));
            }
        }

        Triple[] pool = [.. Enumerable.Range(0, Pool).Select(_ => new Triple(random.Next(Concepts), random.Next(Relations), random.Next(Concepts)))];
        bool[] live = new bool[Pool];
        var estimator = new RelationVectorEstimator(Dimension);
        void Flip(int f)
        {
            Triple t = pool[f];
            if (live[f])
            {
                Assert.True(estimator.Remove(t.Relation, Row(concepts, t.Head), Row(concepts, t.Tail)));
            }
            else
            {
                estimator.Add(t.Relation, Row(concepts, t.Head), Row(concepts, t.Tail));
            }

            live[f] = !live[f];
        }

        for (int op = 0; op < 100_000; op++)
        {
            Flip(random.Next(Pool));
        }

        for (int f = 0; f < Pool; f++)
        {
            if (live[f] && (pool[f].Head % 10 == 0 || pool[f].Tail % 10 == 0))
            {
                Flip(f);
            }
        }

        Triple[] remaining = [.. pool.Where((_, f) => live[f])];
        float[] rebuilt = RelationVectorEstimator.Estimate(remaining, concepts, Relations, Dimension);
        float[] actual = new float[Dimension];
        for (int r = 0; r < Relations; r++)
        {
            Assert.True(estimator.TryGetVector(r, actual));
            Assert.Equal(rebuilt.AsSpan(r * Dimension, Dimension).ToArray(), actual);
            float[] exact = ExactMean([.. remaining.Where(t => t.Relation == r)], concepts);
            for (int i = 0; i < Dimension; i++)
            {
                float ulp = MathF.BitIncrement(MathF.Abs(exact[i])) - MathF.Abs(exact[i]);
                Assert.True(MathF.Abs(actual[i] - exact[i]) <= ulp, $"relation {r}[{i}]: {actual[i]:R}, exact mean {exact[i]:R}");
            }
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

    /// <summary>The mean of tail − head summed exactly as integers (every float is a multiple of
    /// 2^-149), then divided in double: within a float ulp of the true mean.</summary>
    private static float[] ExactMean(Triple[] facts, float[] concepts)
    {
        var mean = new float[Dimension];
        for (int i = 0; i < Dimension; i++)
        {
            BigInteger sum = BigInteger.Zero;
            foreach (Triple t in facts)
            {
                sum += new BigInteger(Math.ScaleB(concepts[t.Tail * Dimension + i], 149)) - new BigInteger(Math.ScaleB(concepts[t.Head * Dimension + i], 149));
            }

            mean[i] = (float)(Math.ScaleB((double)sum, -149) / facts.Length);
        }

        return mean;
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
