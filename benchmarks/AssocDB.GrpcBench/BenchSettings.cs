using System.Globalization;

namespace AssocDB.GrpcBench;

/// <summary>Command-line settings of the gRPC search bench; the defaults are issue 4's workload.</summary>
internal sealed record BenchSettings
{
    public int Concepts { get; init; } = 100_000;

    public int Dimension { get; init; } = 128;

    public int K { get; init; } = 10;

    /// <summary>Batch sizes of the in-process runs; 1 is the engine's single-query path, for reference.</summary>
    public IReadOnlyList<int> Batches { get; init; } = [1, 64, 256];

    /// <summary>Concurrent clients of the gRPC runs with batching on.</summary>
    public IReadOnlyList<int> Clients { get; init; } = [1, 16, 64];

    /// <summary>Concurrent clients of the gRPC run with batching off; none when 0.</summary>
    public int UnbatchedClients { get; init; } = 64;

    /// <summary>One GrpcChannel per client instead of one shared by all (HTTP/2 streams on one connection).</summary>
    public bool ChannelPerClient { get; init; }

    /// <summary>Server settings for every run, as <c>Section:Key=value</c> under <c>AssocDB</c>
    /// (<c>--server-option SearchBatching:MaxDelayMicroseconds=0</c>); repeatable.</summary>
    public IReadOnlyList<string> ServerOptions { get; init; } = [];

    public double WarmupSeconds { get; init; } = 3;

    /// <summary>Measured seconds of each gRPC run, after its warm-up.</summary>
    public double DurationSeconds { get; init; } = 10;

    /// <summary>Measured seconds of each in-process batch size.</summary>
    public double InProcessSeconds { get; init; } = 5;

    /// <summary>Rounds that alternate the largest in-process batch with the most concurrent gRPC run,
    /// both on the hosted server's collection; none when 0.</summary>
    public int PairedRounds { get; init; } = 6;

    /// <summary>Measured seconds of each half of a paired round (the gRPC half adds 1 s of warm-up).</summary>
    public double PairedSeconds { get; init; } = 3;

    /// <summary>libtorch intra-op threads (the GEMM path); 0 keeps libtorch's default.</summary>
    public int TorchThreads { get; init; }

    public string JsonPath { get; init; } = Path.Combine("benchmarks", "results", "grpc.json");

    public static BenchSettings Parse(string[] args)
    {
        var settings = new BenchSettings();
        for (int i = 0; i < args.Length; i++)
        {
            string flag = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{flag} needs a value");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            double NextDouble() => double.Parse(Next(), CultureInfo.InvariantCulture);
            IReadOnlyList<int> NextInts() => [.. Next().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
            settings = flag switch
            {
                "--concepts" => settings with { Concepts = NextInt() },
                "--dim" => settings with { Dimension = NextInt() },
                "--k" => settings with { K = NextInt() },
                "--batches" => settings with { Batches = NextInts() },
                "--clients" => settings with { Clients = NextInts() },
                "--unbatched-clients" => settings with { UnbatchedClients = NextInt() },
                "--channel-per-client" => settings with { ChannelPerClient = true },
                "--server-option" => settings with { ServerOptions = [.. settings.ServerOptions, Next()] },
                "--warmup" => settings with { WarmupSeconds = NextDouble() },
                "--duration" => settings with { DurationSeconds = NextDouble() },
                "--in-process-seconds" => settings with { InProcessSeconds = NextDouble() },
                "--paired-rounds" => settings with { PairedRounds = NextInt() },
                "--paired-seconds" => settings with { PairedSeconds = NextDouble() },
                "--torch-threads" => settings with { TorchThreads = NextInt() },
                "--json" => settings with { JsonPath = Next() },
                _ => throw new ArgumentException($"unknown option {flag}"),
            };
        }

        if (settings.Concepts < 1 || settings.Dimension < 1 || settings.K < 1 || settings.DurationSeconds <= 0 || settings.WarmupSeconds < 0
            || settings.InProcessSeconds <= 0 || settings.PairedRounds < 0 || settings.PairedSeconds <= 0 || settings.Batches.Any(b => b < 1) || settings.Clients.Any(c => c < 1) || settings.UnbatchedClients < 0)
        {
            throw new ArgumentException("sizes, counts and durations must be positive");
        }

        return settings;
    }
}
