namespace AssocDB.LearningBench;

/// <summary>Rule mining over one data set's train split: the rules accepted at the default
/// thresholds, and with no confidence or support floor (the CLI's <c>--min-confidence 0
/// --min-support 1</c>; head coverage keeps its 0.01), counting those past the kept maximum too,
/// with the time each run took.</summary>
internal sealed record MiningRow(
    string Dataset,
    long DistinctFacts,
    int Symmetric,
    int Inverses,
    int Transitive,
    int Compositions,
    double Seconds,
    long RulesWithoutConfidenceOrSupportFloor,
    double SecondsWithoutConfidenceOrSupportFloor);
