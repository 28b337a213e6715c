using System.Globalization;
using AssocDB.Engine.Learning;

namespace AssocDB.LearningBench;

/// <summary>Command-line settings of the learning benchmark; every flag has a CPU-sized default.</summary>
internal sealed record BenchSettings
{
    public string? DataRoot { get; init; }

    public IReadOnlyList<string> Datasets { get; init; } = ["wn18rr", "fb15k-237"];

    public IReadOnlyList<EmbeddingModelKind> Models { get; init; } = [EmbeddingModelKind.TransE, EmbeddingModelKind.RotatE];

    /// <summary>Real floats per concept (RotatE: 2 × complex coordinates, like Sun et al.'s <c>-de</c>).</summary>
    public int Dimension { get; init; } = 100;

    public int NegativeSamples { get; init; } = 64;

    public int BatchSize { get; init; } = 1024;

    public double LearningRate { get; init; } = 0.003;

    public int MaxEpochs { get; init; } = 1000;

    public double TimeLimitSeconds { get; init; } = 150;

    public int ValidateEvery { get; init; } = 5;

    public int ValidationSample { get; init; } = 500;

    /// <summary>Test triples ranked (a seeded sample); 0 ranks the whole test split.</summary>
    public int TestLimit { get; init; }

    public int Threads { get; init; }

    public string Device { get; init; } = "auto";

    public string? JsonPath { get; init; }

    public static BenchSettings Parse(string[] args)
    {
        var settings = new BenchSettings();
        for (int i = 0; i < args.Length; i++)
        {
            string flag = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{flag} needs a value");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            double NextDouble() => double.Parse(Next(), CultureInfo.InvariantCulture);
            settings = flag switch
            {
                "--data" => settings with { DataRoot = Next() },
                "--datasets" => settings with { Datasets = Next().Split(',') },
                "--models" => settings with { Models = ParseModels(Next()) },
                "--dim" => settings with { Dimension = NextInt() },
                "--negatives" => settings with { NegativeSamples = NextInt() },
                "--batch" => settings with { BatchSize = NextInt() },
                "--lr" => settings with { LearningRate = NextDouble() },
                "--epochs" => settings with { MaxEpochs = NextInt() },
                "--time-limit" => settings with { TimeLimitSeconds = NextDouble() },
                "--validate-every" => settings with { ValidateEvery = NextInt() },
                "--validation-sample" => settings with { ValidationSample = NextInt() },
                "--test-limit" => settings with { TestLimit = NextInt() },
                "--threads" => settings with { Threads = NextInt() },
                "--device" => settings with { Device = Next() },
                "--json" => settings with { JsonPath = Next() },
                _ => throw new ArgumentException($"unknown flag {flag}; see benchmarks/RESULTS.md (Learning) for usage"),
            };
        }

        return settings;
    }

    /// <summary>The models of <c>--models</c>: names separated by commas, or <c>none</c> to only mine.</summary>
    private static EmbeddingModelKind[] ParseModels(string names) =>
        names.Equals("none", StringComparison.OrdinalIgnoreCase) ? [] : [.. names.Split(',').Select(m => Enum.Parse<EmbeddingModelKind>(m, ignoreCase: true))];

    /// <summary>Sun et al.'s margin γ and adversarial temperature α for a data set (their
    /// best_config.sh uses the same pair for TransE and RotatE).</summary>
    public static (float Gamma, float Alpha) PublishedLossSettings(string dataset) =>
        dataset.StartsWith("wn18rr", StringComparison.OrdinalIgnoreCase) ? (6f, 0.5f) : (9f, 1f);

    /// <summary>The figures of Sun et al. 2019 (RotatE paper, tables 4–5): filtered MRR and Hits@10.</summary>
    public static (double Mrr, double Hits10)? Published(string dataset, EmbeddingModelKind model) => (dataset.ToLowerInvariant(), model) switch
    {
        ("fb15k-237", EmbeddingModelKind.TransE) => (0.294, 0.465),
        ("fb15k-237", EmbeddingModelKind.RotatE) => (0.338, 0.533),
        ("wn18rr", EmbeddingModelKind.TransE) => (0.226, 0.501),
        ("wn18rr", EmbeddingModelKind.RotatE) => (0.476, 0.571),
        _ => null,
    };
}
