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
