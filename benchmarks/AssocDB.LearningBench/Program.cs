using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using AssocDB.Engine.Learning;
using AssocDB.Engine.Vectors;
using AssocDB.LearningBench;
using static TorchSharp.torch;

// Trains TransE and RotatE on standard link-prediction data sets and reports filtered test
// MRR / Hits@10 beside the published figures, with training throughput beside the device's
// measured GEMM rate. Usage and recorded results: benchmarks/RESULTS.md, section "Learning".
BenchSettings settings = BenchSettings.Parse(args);
if (!ComputeDevice.TryResolve(settings.Device, out Device device, out string deviceError))
{
    Console.Error.WriteLine(deviceError);
    return 2;
}

if (settings.Threads > 0)
{
    set_num_threads(settings.Threads);
}

string dataRoot = settings.DataRoot ?? FindDataRoot();
double gemm = MeasureGemmGflops(device);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"device {device.type}, {get_num_threads()} threads, float32 GEMM 1024³: {gemm:F1} GFLOP/s"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"settings: d={settings.Dimension} negatives={settings.NegativeSamples} batch={settings.BatchSize} lr={settings.LearningRate} time limit {settings.TimeLimitSeconds} s, validate every {settings.ValidateEvery} epochs on {settings.ValidationSample} triples"));

var rows = new List<BenchRow>();
var mining = new List<MiningRow>();
foreach (string name in settings.Datasets)
{
    TripleDataset data = TripleDataset.Load(Path.Combine(dataRoot, name));
    mining.Add(Mine(name, data));
    var known = new KnownTriples(data.Train, data.Validation, data.Test);
    Triple[] test = Sample(data.Test, settings.TestLimit);
    foreach (EmbeddingModelKind kind in settings.Models)
    {
        rows.Add(RunOne(settings, name, data, known, test, kind, device, gemm));
    }
}

Console.WriteLine();
Console.WriteLine($"{"data set",-10} {"model",-8} {"epochs",6} {"s/epoch",8} {"triples/s",10} {"≈GFLOP/s",9} {"MRR",6} {"H@10",6} {"paper MRR",9} {"paper H@10",10} {"test",6}");
foreach (BenchRow r in rows)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{r.Dataset,-10} {r.Model,-8} {r.Epochs,6} {r.SecondsPerEpoch,8:F1} {r.TriplesPerSecond,10:F0} {r.EstimatedGflops,9:F2} {r.Mrr,6:F3} {r.HitsAt10,6:F3} {r.PaperMrr,9:F3} {r.PaperHitsAt10,10:F3} {r.TestTriples,6}"));
}

Console.WriteLine();
Console.WriteLine($"{"data set",-10} {"facts",8} {"symmetric",9} {"inverses",8} {"transitive",10} {"compositions",12} {"s",6} {"rules, confidence 0, support 1",30} {"s",6}");
foreach (MiningRow r in mining)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{r.Dataset,-10} {r.DistinctFacts,8} {r.Symmetric,9} {r.Inverses,8} {r.Transitive,10} {r.Compositions,12} {r.Seconds,6:F2} {r.RulesWithoutConfidenceOrSupportFloor,30} {r.SecondsWithoutConfidenceOrSupportFloor,6:F2}"));
}

if (settings.JsonPath is { } jsonPath)
{
    File.WriteAllText(jsonPath, JsonSerializer.Serialize(
        new { Device = device.type.ToString(), Threads = get_num_threads(), GemmGflops = gemm, Settings = settings, Results = rows, Mining = mining },
        new JsonSerializerOptions { WriteIndented = true, Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } }));
}

return 0;

static BenchRow RunOne(
    BenchSettings s, string name, TripleDataset data, KnownTriples known, Triple[] test, EmbeddingModelKind kind, Device device, double gemm)
{
    (float gamma, float alpha) = BenchSettings.PublishedLossSettings(name);
    var options = new TrainingOptions
    {
        Model = kind,
        Dimension = s.Dimension,
        Margin = gamma,
        AdversarialTemperature = alpha,
        NegativeSamples = s.NegativeSamples,
        BatchSize = s.BatchSize,
        LearningRate = s.LearningRate,
        MaxEpochs = s.MaxEpochs,
        ValidateEvery = s.ValidateEvery,
        ValidationSampleSize = s.ValidationSample,
        TimeLimit = TimeSpan.FromSeconds(s.TimeLimitSeconds),
    };
    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"== {name} {kind}: {data.Concepts.Count} concepts, {data.Relations.Count} relations, {data.Train.Length} train triples, γ={gamma} α={alpha}"));
    var progress = new ConsoleProgress();
    TrainedEmbedding trained = new EmbeddingTrainer(options, device)
        .Train(data.Train, data.Validation, data.Concepts.Count, data.Relations.Count, progress: progress).Value;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"stopped: {trained.StopReason} after {trained.EpochsRun} epochs; returning epoch {trained.BestEpoch} (valid MRR {trained.BestValidationMrr:F3})"));

    LinkPredictionResult result = new LinkPredictionEvaluator(device)
        .Evaluate(trained.Model, trained.Concepts, trained.Relations, test, known).Value;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test ({test.Length} triples, {result.Elapsed.TotalSeconds:F1} s):"));
    Console.Write(result.ToTable(data.Relations.Count <= 20 ? data.Relations : null));

    // Elementwise work per positive triple, forward + backward (≈ 3× forward): TransE-L1 ≈ 3
    // operations per coordinate per candidate, RotatE ≈ 4 (complex difference, modulus); plus
    // Adam's ≈ 15 operations per parameter per step, shared by the batch. A rough figure: the
    // training has no GEMM, so the GEMM rate is a ceiling it cannot reach.
    double perCandidate = kind == EmbeddingModelKind.TransE ? 3 : 4;
    double flopsPerTriple = 3 * perCandidate * (1 + s.NegativeSamples) * s.Dimension
        + 15.0 * (data.Concepts.Count + data.Relations.Count) * s.Dimension / s.BatchSize;
    (double Mrr, double Hits10)? paper = BenchSettings.Published(name, kind);
    return new BenchRow(
        name,
        kind.ToString(),
        trained.EpochsRun,
        progress.TrainingSeconds / Math.Max(1, trained.EpochsRun),
        trained.TriplesPerSecond,
        trained.TriplesPerSecond * flopsPerTriple / 1e9,
        gemm,
        result.Overall.Mrr,
        result.Overall.HitsAt10,
        paper?.Mrr,
        paper?.Hits10,
        test.Length,
        trained.BestValidationMrr,
        trained.Elapsed.TotalSeconds,
        result.Elapsed.TotalSeconds);
}

static Triple[] Sample(Triple[] test, int limit)
{
    if (limit <= 0 || limit >= test.Length)
    {
        return test;
    }

    Triple[] copy = (Triple[])test.Clone();
    new Random(1).Shuffle(copy);
    return copy[..limit];
}

static double MeasureGemmGflops(Device device)
{
    using IDisposable scope = NewDisposeScope();
    const int Size = 1024;
    Tensor a = rand(Size, Size, device: device);
    Tensor b = rand(Size, Size, device: device);
    a.mm(b).cpu();
    var stopwatch = Stopwatch.StartNew();
    int runs = 0;
    while (stopwatch.Elapsed < TimeSpan.FromSeconds(1) || runs < 3)
    {
        a.mm(b).cpu();
        runs++;
    }

    return 2.0 * Size * Size * Size * runs / stopwatch.Elapsed.TotalSeconds / 1e9;
}

// The rules `mine` finds in a collection holding the train split, at the defaults and with no
// confidence or support floor, and how long finding them takes.
static MiningRow Mine(string name, TripleDataset data)
{
    MiningResult defaults = new PropertyMiner().Mine(data.Train, data.Concepts.Count, data.Relations.Count).Value;
    MiningResult all = new PropertyMiner(new MiningOptions { MinConfidence = 0, MinPcaConfidence = 0, MinSupport = 1 })
        .Mine(data.Train, data.Concepts.Count, data.Relations.Count).Value;
    return new MiningRow(
        name, defaults.DistinctFacts, defaults.Symmetric.Count, defaults.Inverses.Count, defaults.Transitive.Count, defaults.Compositions.Count,
        defaults.Elapsed.TotalSeconds, Accepted(all), all.Elapsed.TotalSeconds);

    // Those past MaxRules too: Nations with no floor accepts more compositions than are kept.
    static long Accepted(MiningResult result) =>
        result.Symmetric.Count + result.Inverses.Count + result.Transitive.Count + result.Compositions.Count + result.UnkeptRules;
}

static string FindDataRoot()
{
    for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "shared", "data", "kg");
        if (Directory.Exists(candidate))
        {
            return candidate;
        }
    }

    throw new DirectoryNotFoundException("shared/data/kg not found above the program; pass --data <folder>");
}
