namespace AssocDB.Engine.Learning;

/// <summary>Vectors to start training from: the first rows of the concept matrix, and relations'
/// vectors by id. Concepts beyond them, and relations without one, start at random.</summary>
/// <param name="Concepts">Row-major <c>[n₀, d]</c>, n₀ ≤ n.</param>
/// <param name="Relations">Up to m entries, each null or the relation's vector of the model's
/// relation dimension (RotatE: phases).</param>
public sealed record InitialVectors(float[] Concepts, float[]?[] Relations);

/// <summary>One epoch's report from <see cref="EmbeddingTrainer"/>.</summary>
/// <param name="Epoch">1-based epoch just finished.</param>
/// <param name="MaxEpochs">The configured upper bound.</param>
/// <param name="Loss">Mean loss over the epoch's batches.</param>
/// <param name="ValidationMrr">Filtered MRR on the validation sample, when validated this epoch.</param>
/// <param name="TriplesPerSecond">Positive triples trained per second in this epoch (validation excluded).</param>
/// <param name="EpochTime">Training time of this epoch.</param>
/// <param name="Elapsed">Time since training started, validation included.</param>
public sealed record TrainingProgress(
    int Epoch, int MaxEpochs, double Loss, double? ValidationMrr, double TriplesPerSecond, TimeSpan EpochTime, TimeSpan Elapsed);

/// <summary>The result of training: managed copies of the learned vectors and how training went.</summary>
/// <param name="Model">The geometry the vectors are for (operators and score).</param>
/// <param name="Concepts">Row-major <c>[n, d]</c>.</param>
/// <param name="Relations">Row-major <c>[m, Model.RelationDimension]</c> (RotatE: phases in radians).</param>
/// <param name="EpochsRun">Epochs trained.</param>
/// <param name="BestEpoch">Epoch whose parameters are returned (the best validated one, or the last).</param>
/// <param name="BestValidationMrr">Validation MRR of those parameters; null without a validation split.</param>
/// <param name="StopReason">Why training ended.</param>
/// <param name="TriplesPerSecond">Mean training throughput, validation excluded.</param>
/// <param name="Elapsed">Total wall time.</param>
public sealed record TrainedEmbedding(
    EmbeddingModel Model,
    float[] Concepts,
    float[] Relations,
    int EpochsRun,
    int BestEpoch,
    double? BestValidationMrr,
    TrainingStopReason StopReason,
    double TriplesPerSecond,
    TimeSpan Elapsed);
