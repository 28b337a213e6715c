using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Vectors;

// Guards bidirectional recall: over 10 k facts on random unit vectors, a head at cosine 0.9 recalls
// its tail forward and a tail at cosine 0.9 its head in reverse (≥ 99%); auto and symmetric
// relations answer from whichever end the input matches; recall in small chunks equals the
// documented formula.
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
        using var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails);
        Assert.True(Accuracy(memory, RecallDirection.Forward, f => f, f => Facts + f, 1) >= 0.99);
    }

    [Fact]
    public void Reverse_recalls_the_head_of_a_noisy_tail()
    {
        using var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails);
        Assert.True(Accuracy(memory, RecallDirection.Reverse, f => Facts + f, f => f, 2) >= 0.99);
    }

    [Fact]
    public void Auto_gates_toward_the_end_the_input_matches()
    {
        using var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails);
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
        using var memory = new RecallMemory(Data.Value.Matrix, Heads, Tails, symmetric: true);
        // Forward on a symmetric relation reads both ends, so a tail recalls its head too.
        Assert.True(Accuracy(memory, RecallDirection.Forward, f => Facts + f, f => f, 4) >= 0.99);
        Assert.True(Accuracy(memory, RecallDirection.Auto, f => f, f => Facts + f, 5) >= 0.99);
    }

    [Fact]
    public void Bad_inputs_are_errors_and_removed_facts_carry_no_weight()
    {
        using var matrix = new ConceptMatrix(4, CPU, Metric.Dot, StoragePrecision.Float32);
        matrix.SetRows([0, 1, 2, 3], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
        using var memory = new RecallMemory(matrix, [0, 2], [1, 3]);
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

    [Theory]
    [InlineData(Metric.Cosine)]
    [InlineData(Metric.Dot)]
    [InlineData(Metric.L2)]
    public void Small_chunks_recall_what_the_formula_gives(Metric metric)
    {
        const int d = 8;
        const int rows = 30;
        var random = new Random(7);
        float[] vectors = VectorFixtures.Gaussian(random, rows, d);
        using var matrix = new ConceptMatrix(d, CPU, metric, StoragePrecision.Float32);
        matrix.SetRows(Enumerable.Range(0, rows).ToArray(), vectors);
        // Rows repeat across facts and ends, as in a real relation, except the last fact's two rows
        // (28 and 29), which no other fact names. The first chunk's keys are all removed, so a
        // forward read's first chunk has no live fact and must add nothing.
        int[] heads = [0, 1, 2, .. Enumerable.Range(0, 36).Select(_ => random.Next(28)), 28];
        int[] tails = [.. Enumerable.Range(0, 39).Select(_ => random.Next(28)), 29];
        int[] removed = [0, 1, 2, 7, 19];
        foreach (int row in removed)
        {
            matrix.Remove(row);
        }

        // Near both rows of the last fact, so the best score at each end comes in the last chunk
        // and the running max rises after weight has been accumulated; then two anywhere.
        float[][] inputs =
        [
            [.. vectors.AsSpan(28 * d, d).ToArray().Zip(vectors.AsSpan(29 * d, d).ToArray(), (h, t) => h + t)],
            VectorFixtures.Gaussian(random, 1, d),
            VectorFixtures.Gaussian(random, 1, d),
        ];

        // 3 rows of d floats a chunk, or 3 facts (32 bytes each), so both loops run many chunks
        // and end short.
        const long chunkBytes = 3 * d * sizeof(float);
        // β = 2 spreads the weight over many facts, so a wrong merge of the chunks shows.
        const float beta = 2f;
        var search = new VectorSearch();
        foreach (bool symmetric in new[] { false, true })
        {
            using var chunked = new RecallMemory(matrix, heads, tails, symmetric, chunkBytes);
            using var whole = new RecallMemory(matrix, heads, tails, symmetric);
            foreach ((float[] x, RecallDirection direction) in inputs.SelectMany(x => Enum.GetValues<RecallDirection>().Select(direction => (x, direction))))
            {
                string context = $"{metric} {direction} symmetric={symmetric} input {Array.IndexOf(inputs, x)}";
                RecallOutcome small = chunked.Recall(x, direction, beta, 3, search).Value;
                RecallOutcome one = whole.Recall(x, direction, beta, 3, search).Value;
                (double[] expected, double forwardWeight) = Formula(metric, vectors, heads, tails, removed, symmetric ? RecallDirection.Auto : direction, beta, x);
                double scale = expected.Max(Math.Abs);
                for (int i = 0; i < d; i++)
                {
                    Assert.True(Math.Abs(small.Vector[i] - expected[i]) <= 1e-5 * scale, $"{context}: y[{i}] {small.Vector[i]} vs {expected[i]}");
                    Assert.True(Math.Abs(one.Vector[i] - expected[i]) <= 1e-5 * scale, $"{context}: one chunk y[{i}] {one.Vector[i]} vs {expected[i]}");
                }

                Assert.True(Math.Abs(small.ForwardWeight - forwardWeight) <= 1e-5, $"{context}: α {small.ForwardWeight} vs {forwardWeight}");
                Assert.True(Math.Abs(one.ForwardWeight - forwardWeight) <= 1e-5, $"{context}: one chunk α {one.ForwardWeight} vs {forwardWeight}");
                Assert.Equal(one.Nearest.Rows, small.Nearest.Rows);
            }
        }

        // With every key removed a forward read finds nothing live, in chunks as in one.
        foreach (int row in heads)
        {
            matrix.Remove(row);
        }

        using var keysRemoved = new RecallMemory(matrix, heads, tails, false, chunkBytes);
        Assert.Equal(ErrorCode.FailedPrecondition, keysRemoved.Recall(inputs[1], RecallDirection.Forward, beta, 1, search).Error!.Code);
    }

    /// <summary>The class remarks' formula in float64, fact by fact (no chunks, no shared rows):
    /// y and α for one input.</summary>
    private static (double[] Y, double ForwardWeight) Formula(
        Metric metric, float[] vectors, int[] heads, int[] tails, int[] removed, RecallDirection direction, float beta, float[] x)
    {
        int d = x.Length;
        ReadOnlySpan<float> Row(int row) => vectors.AsSpan(row * d, d);
        double Score(int row) => removed.Contains(row) ? double.NegativeInfinity : VectorFixtures.Score64(metric, Row(row), x);

        // Each read end: the scores of its rows and the rows that answer them.
        var ends = new List<(double[] Scores, int[] Answers, bool Forward)>();
        if (direction != RecallDirection.Reverse)
        {
            ends.Add((heads.Select(Score).ToArray(), tails, true));
        }

        if (direction != RecallDirection.Forward)
        {
            ends.Add((tails.Select(Score).ToArray(), heads, false));
        }

        double max = ends.SelectMany(end => end.Scores).Max();
        var y = new double[d];
        double total = 0;
        double forward = 0;
        foreach ((double[] scores, int[] answers, bool isForward) in ends)
        {
            for (int i = 0; i < scores.Length; i++)
            {
                double weight = Math.Exp(beta * (scores[i] - max));
                total += weight;
                forward += isForward ? weight : 0;
                ReadOnlySpan<float> answer = removed.Contains(answers[i]) ? new float[d] : Row(answers[i]);
                for (int j = 0; j < d; j++)
                {
                    y[j] += weight * answer[j];
                }
            }
        }

        return (y.Select(value => value / total).ToArray(), forward / total);
    }
}
