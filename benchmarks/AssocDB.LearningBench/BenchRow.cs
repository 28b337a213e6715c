namespace AssocDB.LearningBench;

/// <summary>One trained model's measurements, as printed and written to JSON.</summary>
internal sealed record BenchRow(
    string Dataset,
    string Model,
    int Epochs,
    double SecondsPerEpoch,
    double TriplesPerSecond,
    double EstimatedGflops,
    double GemmGflops,
    double Mrr,
    double HitsAt10,
    double? PaperMrr,
    double? PaperHitsAt10,
    int TestTriples,
    double? ValidationMrr,
    double TrainingSeconds,
    double EvaluationSeconds);

/// <summary>Rule mining over one data set's train split: the rules accepted at the default
/// thresholds, and at every threshold off (confidence 0, support 1), with the time each run took.</summary>
internal sealed record MiningRow(
    string Dataset,
    long DistinctFacts,
    int Symmetric,
    int Inverses,
    int Transitive,
    int Compositions,
    double Seconds,
    int RulesWithThresholdsOff,
    double SecondsWithThresholdsOff);
