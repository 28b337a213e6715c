using AssocDB.Engine.Model;

namespace AssocDB.Engine.Learning;

/// <summary>The loss an <see cref="EmbeddingTrainer"/> minimises.</summary>
public enum TrainingLoss
{
    /// <summary>Margin ranking loss <c>Σ wₖ max(0, γ + d(pos) − d(negₖ))</c> (Bordes et al. 2013).
    /// Concept vectors are normalised to unit L2 norm at the start and after every step, as in
    /// TransE, since otherwise growing norms satisfy any margin; use a margin around 1.</summary>
    Margin,

    /// <summary>Negative-sampling loss of Sun et al. 2019:
    /// <c>−log σ(γ − d(pos)) − Σ wₖ log σ(d(negₖ) − γ)</c>; γ is typically 6–24.</summary>
    NegativeSampling,
}

/// <summary>Why training ended.</summary>
public enum TrainingStopReason
{
    /// <summary><see cref="TrainingOptions.MaxEpochs"/> epochs ran.</summary>
    MaxEpochs,

    /// <summary>Validation MRR did not improve for <see cref="TrainingOptions.Patience"/> validations.</summary>
    EarlyStopping,

    /// <summary><see cref="TrainingOptions.TimeLimit"/> was reached (checked after each epoch).</summary>
    TimeLimit,
}

/// <summary>
/// Hyper-parameters of <see cref="EmbeddingTrainer"/>. The defaults are a reasonable start for
/// mid-sized graphs on a GPU; Sun et al. 2019 (appendix) list the settings of their published
/// figures (e.g. FB15k-237 RotatE: d = 2·1000, γ = 9, α = 1, 256 negatives, batch 1024).
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Embedding family. Default RotatE.</summary>
    public EmbeddingModelKind Model { get; init; } = EmbeddingModelKind.RotatE;

    /// <summary>Concept vector dimension d (RotatE: d/2 complex coordinates). Default 200.</summary>
    public int Dimension { get; init; } = 200;

    /// <summary>TransE's distance. Default L1.</summary>
    public DistanceNorm Norm { get; init; } = DistanceNorm.L1;

    /// <summary>Loss. Default <see cref="TrainingLoss.NegativeSampling"/>.</summary>
    public TrainingLoss Loss { get; init; } = TrainingLoss.NegativeSampling;

    /// <summary>The margin γ (also sets the initialisation range <c>(γ + 2) / k</c>, k the number of
    /// coordinates, as in Sun et al.). Default 9.</summary>
    public float Margin { get; init; } = 9f;

    /// <summary>Self-adversarial temperature α: negatives are weighted by
    /// <c>softmax(α · score)</c> (Sun et al. 2019), so hard negatives count more. 0 weights them
    /// uniformly. Default 1.</summary>
    public float AdversarialTemperature { get; init; } = 1f;

    /// <summary>Negatives per positive, drawn uniformly from all concepts (not filtered), replacing
    /// the tail and the head in alternate batches. Default 64.</summary>
    public int NegativeSamples { get; init; } = 64;

    /// <summary>Positive triples per step. Default 512.</summary>
    public int BatchSize { get; init; } = 512;

    /// <summary>Adam learning rate. Default 0.001.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Upper bound on epochs. Default 100.</summary>
    public int MaxEpochs { get; init; } = 100;

    /// <summary>Validate (filtered MRR on the validation split) every this many epochs. Default 5.</summary>
    public int ValidateEvery { get; init; } = 5;

    /// <summary>Validations without improvement before stopping early; the best parameters seen
    /// are returned. Default 3.</summary>
    public int Patience { get; init; } = 3;

    /// <summary>At most this many validation triples are ranked per validation (a fixed seeded
    /// sample), because ranking against every concept is the costly part on large graphs.
    /// Default 1000.</summary>
    public int ValidationSampleSize { get; init; } = 1000;

    /// <summary>Stop after the epoch during which this much time has passed; null for none.</summary>
    public TimeSpan? TimeLimit { get; init; }

    /// <summary>Seed for initialisation, shuffling and negative sampling. Default 1. The same seed
    /// trains the same vectors on a CPU; on a GPU the gradients of rows gathered by index are summed
    /// with atomic adds, in no fixed order (PyTorch documents index_add_ on CUDA as
    /// nondeterministic), so runs may differ in their last bits.</summary>
    public long Seed { get; init; } = 1;

    /// <summary>When warm-starting, keep the given concept vectors fixed and train only the new
    /// concepts and the relations. Default false (given vectors are a starting point).</summary>
    public bool FreezeInitialConcepts { get; init; }

    /// <summary>The most floats one training step's negatives may take (b × k × d): 1 GiB.</summary>
    public const long MaxStepElements = 1L << 28;

    /// <summary>The first out-of-range setting, or null when all are valid.</summary>
    public EngineError? Validate()
    {
        if (Dimension < 1 || (Model == EmbeddingModelKind.RotatE && Dimension % 2 != 0))
        {
            return EngineError.Invalid("dimension", "must be positive, and even for RotatE");
        }

        if (!(Margin > 0) || !float.IsFinite(Margin))
        {
            return EngineError.Invalid("margin", "must be positive and finite");
        }

        if (!(AdversarialTemperature >= 0) || !float.IsFinite(AdversarialTemperature))
        {
            return EngineError.Invalid("adversarialTemperature", "must be zero or positive and finite");
        }

        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
        {
            return EngineError.Invalid("learningRate", "must be positive and finite");
        }

        return NegativeSamples < 1 ? EngineError.Invalid("negativeSamples", "must be at least 1")
            : BatchSize < 1 ? EngineError.Invalid("batchSize", "must be at least 1")
            : (long)BatchSize * NegativeSamples * Dimension > MaxStepElements
                ? new EngineError(ErrorCode.ResourceExhausted, "negativeSamples", $"batchSize × negativeSamples × dimension is {(long)BatchSize * NegativeSamples * Dimension} floats a step; at most {MaxStepElements} (1 GiB)")
            : MaxEpochs < 1 ? EngineError.Invalid("maxEpochs", "must be at least 1")
            : ValidateEvery < 1 ? EngineError.Invalid("validateEvery", "must be at least 1")
            : Patience < 1 ? EngineError.Invalid("patience", "must be at least 1")
            : ValidationSampleSize < 1 ? EngineError.Invalid("validationSampleSize", "must be at least 1")
            : TimeLimit is { } limit && limit <= TimeSpan.Zero ? EngineError.Invalid("timeLimit", "must be positive")
            : null;
    }
}
