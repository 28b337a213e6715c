using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards bidirectional recall: over 10 k facts on random unit vectors, a head at cosine 0.9 recalls
// its tail forward and a tail at cosine 0.9 its head in reverse (≥ 99%); auto and symmetric
// relations answer from whichever end the input matches.
public sealed class RecallMemoryTests
{
    private const int Dimension = 128;
    private const int Facts = 10_000;
    private const int Trials = 150;

    // β = 32 (the API default). Measured with this setup (150 trials each, forward / reverse top-1):
    // β = 2: 1% / 0%; β = 4: 47% / 28%; β = 8 to 128: 100% / 100%. Below ~8 the other 9 999 facts'
    // softmax mass blurs y; 32 leaves a 4× margin.
    private const float Beta = 32f;

    private static readonly Lazy<(ConceptMatrix Matrix, float[] Vectors)> Data = new(() =>
    {
        var random = new Random(5);
        float[] vectors = VectorFixtures.Unit(random, 2 * Facts, Dimension);
        var matrix = new ConceptMatrix(Dimension, CPU, Metric.Cosine, StoragePrecision.Float32, 2 * Facts);
        matrix.SetRows(Enumerable.Range(0, 2 * Facts).ToArray(), vectors);
        return (matrix, vectors);
    });

    private static int[] Heads => Enumerable.Range(0, Facts).ToArray();

    private static int[] Tails => Enumerable.Range(Facts, Facts).ToArray();

    /// <summary>A unit vector at cosine 0.9 to row <paramref name="row"/>.</summary>
    private static float[] Noisy(Random random, int row)
    {
        float[] truth = Data.Value.Vectors.AsSpan(row * Dimension, Dimension).ToArray();
        float[] noise = VectorFixtures.Unit(random, 1, Dimension);
        double along = VectorFixtures.Dot64(noise, truth);
        for (int i = 0; i < Dimension; i++)
        {
            noise[i] -= (float)(along * truth[i]);
        }

        VectorFixtures.Normalize(noise);
        double sine = Math.Sqrt(1 - (0.9 * 0.9));
        return truth.Select((t, i) => (float)((0.9 * t) + (sine * noise[i]))).ToArray();
    }

    private static double Accuracy(RecallMemory memory, RecallDirection direction, Func<int, int> inputRow, Func<int, int> answerRow, int seed)
    {
        var random = new Random(seed);
        var search = new VectorSearch();
        int hits = 0;
        for (int trial = 0; trial < Trials; trial++)
        {
            int fact = random.Next(Facts);
            RecallOutcome outcome = memory.Recall(Noisy(random, inputRow(fact)), direction, Beta, 1, search).Value;
            hits += outcome.Nearest.Rows[0] == answerRow(fact) ? 1 : 0;
        }

        return (double)hits / Trials;
    }

    [Fact]
    public void Forward_recalls_the_tail_of_a_noisy_head()
    {
        var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails);
        Assert.True(Accuracy(memory, RecallDirection.Forward, f => f, f => Facts + f, 1) >= 0.99);
    }

    [Fact]
    public void Reverse_recalls_the_head_of_a_noisy_tail()
    {
        var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails);
        Assert.True(Accuracy(memory, RecallDirection.Reverse, f => Facts + f, f => f, 2) >= 0.99);
    }

    [Fact]
    public void Auto_gates_toward_the_end_the_input_matches()
    {
        var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails);
        var random = new Random(3);
        var search = new VectorSearch();
        RecallOutcome fromHead = memory.Recall(Noisy(random, 42), RecallDirection.Auto, Beta, 1, search).Value;
        RecallOutcome fromTail = memory.Recall(Noisy(random, Facts + 42), RecallDirection.Auto, Beta, 1, search).Value;
        Assert.True(fromHead.ForwardWeight > 0.99f, $"gate {fromHead.ForwardWeight}");
        Assert.Equal(Facts + 42, fromHead.Nearest.Rows[0]);
        Assert.True(fromTail.ForwardWeight < 0.01f, $"gate {fromTail.ForwardWeight}");
        Assert.Equal(42, fromTail.Nearest.Rows[0]);
    }

    [Fact]
    public void Symmetric_relation_answers_from_both_ends_in_every_direction()
    {
        var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails, symmetric: true);
        // Forward on a symmetric relation reads both ends, so a tail recalls its head too.
        Assert.True(Accuracy(memory, RecallDirection.Forward, f => Facts + f, f => f, 4) >= 0.99);
        Assert.True(Accuracy(memory, RecallDirection.Auto, f => f, f => Facts + f, 5) >= 0.99);
    }

    [Fact]
    public void Bad_inputs_are_errors_and_removed_facts_carry_no_weight()
    {
        using var matrix = new ConceptMatrix(4, CPU, Metric.Dot, StoragePrecision.Float32);
        matrix.SetRows([0, 1, 2, 3], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
        var memory = new RecallMemory(matrix, [0, 2], [1, 3]);
        var search = new VectorSearch();
        Assert.Equal(ErrorCode.InvalidArgument, memory.Recall([1, 0], RecallDirection.Forward, Beta, 1, search).Error!.Code);
        Assert.Equal(ErrorCode.InvalidArgument, memory.Recall([1, 0, 0, 0], RecallDirection.Forward, 0, 1, search).Error!.Code);
        Assert.Equal(ErrorCode.InvalidArgument, memory.Recall([1, 0, 0, 0], RecallDirection.Forward, Beta, 0, search).Error!.Code);

        matrix.Remove(0);
        RecallOutcome outcome = memory.Recall([1, 0, 0, 0], RecallDirection.Forward, Beta, 1, search).Value;
        Assert.Equal(3, outcome.Nearest.Rows[0]);
        matrix.Remove(2);
        Assert.Equal(ErrorCode.FailedPrecondition, memory.Recall([1, 0, 0, 0], RecallDirection.Forward, Beta, 1, search).Error!.Code);
    }
}
