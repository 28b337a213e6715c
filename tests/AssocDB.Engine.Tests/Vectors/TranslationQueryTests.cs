using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards the vector reading of relations: on translation data t = h + r + noise, c + r finds the
// true tail first and c − r the true head first in at least 99% of queries.
public sealed class TranslationQueryTests
{
    private const int Dimension = 64;
    private const int Facts = 1000;

    [Theory]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.L2)]
    public void Plus_finds_the_tail_and_minus_the_head(Metric metric)
    {
        var random = new Random(11 + (int)metric);
        float[] heads = VectorFixtures.Unit(random, Facts, Dimension);
        float[] relation = VectorFixtures.Unit(random, 1, Dimension);
        float[] tails = new float[Facts * Dimension];
        for (int i = 0; i < tails.Length; i++)
        {
            // Noise of norm ~0.1 against unit heads and relation.
            tails[i] = heads[i] + relation[i % Dimension] + (float)(0.1 / Math.Sqrt(Dimension) * VectorFixtures.NextGaussian(random));
        }

        using var matrix = new ConceptMatrix(Dimension, CPU, metric, StoragePrecision.Float32);
        matrix.SetRows(Enumerable.Range(0, Facts).ToArray(), heads);
        matrix.SetRows(Enumerable.Range(Facts, Facts).ToArray(), tails);
        var search = new VectorSearch();

        int forward = 0, reverse = 0;
        for (int i = 0; i < Facts; i++)
        {
            VectorQuery plus = VectorQuery.FromConcept(i).Plus(relation);
            SearchHits tail = search.Search(matrix, plus.Build(matrix).Value, 1, new SearchFilter([plus.ConceptRows.ToHashSet()])).Value[0];
            forward += tail.Rows[0] == Facts + i ? 1 : 0;

            VectorQuery minus = VectorQuery.FromConcept(Facts + i).Minus(relation);
            SearchHits head = search.Search(matrix, minus.Build(matrix).Value, 1, new SearchFilter([minus.ConceptRows.ToHashSet()])).Value[0];
            reverse += head.Rows[0] == i ? 1 : 0;
        }

        Assert.True(forward >= 0.99 * Facts, $"c + r ranked the true tail first in {forward} of {Facts}");
        Assert.True(reverse >= 0.99 * Facts, $"c − r ranked the true head first in {reverse} of {Facts}");
    }

    [Fact]
    public void Building_from_a_free_row_is_not_found_and_a_short_relation_is_invalid()
    {
        using var matrix = new ConceptMatrix(4, CPU, Metric.Dot, StoragePrecision.Float32);
        matrix.Set(0, [1, 2, 3, 4]);
        Assert.Equal(ErrorCode.NotFound, VectorQuery.FromConcept(1).Build(matrix).Error!.Code);
        Assert.Equal(ErrorCode.InvalidArgument, VectorQuery.FromConcept(0).Plus([1, 2]).Build(matrix).Error!.Code);
        Assert.Equal([2f, 2, 4, 4], VectorQuery.FromConcept(0).Plus([1, 1, 1, 1]).Minus([0, 1, 0, 1]).Build(matrix).Value);
    }
}
