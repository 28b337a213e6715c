using System.Diagnostics;
using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AssocDB.Engine.Learning;

/// <summary>
/// Trains concept and relation vectors (TransE or RotatE) on a device with TorchSharp autograd:
/// uniform or self-adversarial negative sampling, Adam, mini-batches, early stopping on the
/// filtered MRR of a validation split, progress per epoch, cancellation between steps.
/// </summary>
/// <remarks>
/// The trainer owns its parameters for the duration of <see cref="Train"/> and returns managed
/// copies, so no tensor outlives the call. Gradients are dense over the concept matrix (Adam
/// touches all n·d entries per step), as in Sun et al.'s reference code: with uniform negatives
/// most rows are drawn in every step anyway (64 negatives × 1024 triples cover ~80 % of WN18RR's
/// 41 k concepts), so a sparse update would save little. Differences from that code: negatives
/// are not filtered against known triples, there is no frequency subsampling weight and no
/// learning-rate drop halfway.
/// </remarks>
public sealed class EmbeddingTrainer
{
    private readonly TrainingOptions _options;
    private readonly Device _device;

    /// <summary>Creates a trainer with the given settings, computing on <paramref name="device"/>.</summary>
    public EmbeddingTrainer(TrainingOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(device);
        _options = options;
        _device = device;
    }

    /// <summary>
    /// Trains on <paramref name="train"/> for <paramref name="conceptCount"/> concepts and
    /// <paramref name="relationCount"/> relations, validating on <paramref name="validation"/>
    /// (may be empty: then no early stopping). Rows in <paramref name="unusedRows"/> (free rows of
    /// deleted concepts) are never drawn as negatives nor ranked in validation. Returns an error for
    /// invalid options, ids or initial vectors, or when the loss stops being finite (the learning
    /// rate is too high for the data); throws <see cref="OperationCanceledException"/> when cancelled.
    /// </summary>
    public Result<TrainedEmbedding> Train(
        ReadOnlySpan<Triple> train,
        ReadOnlySpan<Triple> validation,
        int conceptCount,
        int relationCount,
        InitialVectors? initial = null,
        IReadOnlyCollection<int>? unusedRows = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (_options.Validate() is { } invalid)
        {
            return invalid;
        }

        var model = new EmbeddingModel(_options.Model, _options.Dimension, _options.Norm);
        long[] unused = unusedRows is null ? [] : [.. unusedRows.Order().Distinct().Select(row => (long)row)];
        if (CheckInputs(model, train, validation, conceptCount, relationCount, initial, unused) is { } bad)
        {
            return bad;
        }

        var stopwatch = Stopwatch.StartNew();
        var state = new TrainingState(model, _options, conceptCount, relationCount, initial, unused, _device);
        try
        {
            return Run(state, train, validation, progress, stopwatch, cancellationToken);
        }
        finally
        {
            state.Dispose();
        }
    }

    private Result<TrainedEmbedding> Run(
        TrainingState state,
        ReadOnlySpan<Triple> train,
        ReadOnlySpan<Triple> validation,
        IProgress<TrainingProgress>? progress,
        Stopwatch stopwatch,
        CancellationToken cancellationToken)
    {
        TrainingOptions o = _options;
        Triple[] validationSample = Sample(validation, o.ValidationSampleSize, o.Seed);
        var known = new KnownTriples(train.ToArray(), validation.ToArray());
        var evaluator = new LinkPredictionEvaluator(_device);
        using Tensor triples = TriplesTensor(train);

        double bestMrr = double.NegativeInfinity;
        int bestEpoch = 0;
        int staleValidations = 0;
        int epoch = 0;
        long trainedTriples = 0;
        TimeSpan trainingTime = TimeSpan.Zero;
        TrainingStopReason reason = TrainingStopReason.MaxEpochs;
        while (epoch < o.MaxEpochs)
        {
            epoch++;
            var epochClock = Stopwatch.StartNew();
            double loss = state.RunEpoch(triples, cancellationToken);
            if (!double.IsFinite(loss))
            {
                // Parameters that reached ∞ or NaN rank nothing; writing them would destroy W.
                return new EngineError(
                    ErrorCode.FailedPrecondition, "learning_rate", $"training diverged: the loss of epoch {epoch} is {loss}; lower the learning rate (now {o.LearningRate})");
            }

            TimeSpan epochTime = epochClock.Elapsed;
            trainingTime += epochTime;
            trainedTriples += train.Length;

            double? mrr = null;
            if (validationSample.Length > 0 && (epoch % o.ValidateEvery == 0 || epoch == o.MaxEpochs))
            {
                mrr = ValidationMrr(state, evaluator, validationSample, known, cancellationToken);
                if (mrr > bestMrr)
                {
                    bestMrr = mrr.Value;
                    bestEpoch = epoch;
                    staleValidations = 0;
                    state.SnapshotBest();
                }
                else
                {
                    staleValidations++;
                }
            }

            progress?.Report(new TrainingProgress(
                epoch, o.MaxEpochs, loss, mrr, train.Length / Math.Max(1e-9, epochTime.TotalSeconds), epochTime, stopwatch.Elapsed));

            if (staleValidations >= o.Patience)
            {
                reason = TrainingStopReason.EarlyStopping;
                break;
            }

            if (o.TimeLimit is { } limit && stopwatch.Elapsed >= limit && epoch < o.MaxEpochs)
            {
                reason = TrainingStopReason.TimeLimit;
                break;
            }
        }

        if (validationSample.Length > 0 && reason == TrainingStopReason.TimeLimit && epoch % o.ValidateEvery != 0)
        {
            // The last epochs were not validated yet (maybe none were): they may beat the snapshot.
            double last = ValidationMrr(state, evaluator, validationSample, known, cancellationToken);
            if (last > bestMrr)
            {
                bestMrr = last;
                bestEpoch = epoch;
                state.SnapshotBest();
            }
        }

        bool validated = bestEpoch > 0;
        (float[] concepts, float[] relationVectors) = state.Export(useBest: validated);
        return new TrainedEmbedding(
            state.Model,
            concepts,
            relationVectors,
            epoch,
            validated ? bestEpoch : epoch,
            validated ? bestMrr : null,
            reason,
            trainedTriples / Math.Max(1e-9, trainingTime.TotalSeconds),
            stopwatch.Elapsed);
    }

    private static double ValidationMrr(
        TrainingState state, LinkPredictionEvaluator evaluator, Triple[] sample, KnownTriples known, CancellationToken cancellationToken)
    {
        using IDisposable noGrad = no_grad();
        using Tensor relations = state.RelationVectors();
        return evaluator.Evaluate(state.Model, state.Concepts, relations, sample, known, state.UnusedRows, progress: null, cancellationToken).Overall.Mrr;
    }

    private static EngineError? CheckInputs(
        EmbeddingModel model, ReadOnlySpan<Triple> train, ReadOnlySpan<Triple> validation, int n, int m, InitialVectors? initial, long[] unusedRows)
    {
        if (n < 1 || m < 1)
        {
            return EngineError.Invalid(n < 1 ? "conceptCount" : "relationCount", "must be at least 1");
        }

        if (unusedRows.Length > 0 && (unusedRows[0] < 0 || unusedRows[^1] >= n || unusedRows.Length == n))
        {
            return EngineError.Invalid("unusedRows", $"must be rows of the {n} concepts, leaving at least one in use");
        }

        if (train.IsEmpty)
        {
            return EngineError.Invalid("train", "needs at least one triple");
        }

        if (FirstOutOfRange(train, n, m) is { } badTrain)
        {
            return EngineError.Invalid($"train[{badTrain}]", $"id outside the {n} concepts or {m} relations");
        }

        if (FirstOutOfRange(validation, n, m) is { } badValidation)
        {
            return EngineError.Invalid($"validation[{badValidation}]", $"id outside the {n} concepts or {m} relations");
        }

        if (initial is null)
        {
            return null;
        }

        if (initial.Concepts.Length % model.Dimension != 0 || initial.Concepts.Length / model.Dimension > n)
        {
            return EngineError.Invalid("initial.concepts", $"must hold at most {n} rows of d = {model.Dimension} floats");
        }

        if (initial.Relations.Length > m || initial.Relations.Any(vector => vector is not null && vector.Length != model.RelationDimension))
        {
            return EngineError.Invalid("initial.relations", $"must hold at most {m} vectors, each null or of {model.RelationDimension} floats");
        }

        return initial.Concepts.Any(v => !float.IsFinite(v)) || initial.Relations.Any(vector => vector is not null && vector.Any(v => !float.IsFinite(v)))
            ? EngineError.Invalid("initial", "vectors must be finite")
            : null;
    }

    private static int? FirstOutOfRange(ReadOnlySpan<Triple> triples, int n, int m)
    {
        for (int i = 0; i < triples.Length; i++)
        {
            Triple t = triples[i];
            if ((uint)t.Head >= (uint)n || (uint)t.Tail >= (uint)n || (uint)t.Relation >= (uint)m)
            {
                return i;
            }
        }

        return null;
    }

    private static Triple[] Sample(ReadOnlySpan<Triple> triples, int size, long seed)
    {
        Triple[] all = triples.ToArray();
        if (all.Length <= size)
        {
            return all;
        }

        new Random(unchecked((int)seed)).Shuffle(all);
        return all[..size];
    }

    private Tensor TriplesTensor(ReadOnlySpan<Triple> train)
    {
        long[] flat = new long[train.Length * 3];
        for (int i = 0; i < train.Length; i++)
        {
            flat[3 * i] = train[i].Head;
            flat[3 * i + 1] = train[i].Relation;
            flat[3 * i + 2] = train[i].Tail;
        }

        using (NewDisposeScope())
        {
            // The host tensor is freed with the scope when the device is not the CPU.
            return tensor(flat, [train.Length, 3]).to(_device).DetachFromDisposeScope();
        }
    }

    /// <summary>The parameters, optimizer and random state of one training run.</summary>
    private sealed class TrainingState : IDisposable
    {
        private readonly TrainingOptions _options;
        private readonly Device _device;
        private readonly Parameter _concepts;
        private readonly Parameter _relations;
        private readonly AdamOptimizer _optimizer;
        private readonly Generator _generator;
        private readonly Tensor? _trainableRows;
        private readonly int _conceptCount;

        // Negatives are drawn from the rows in use: all of them, or these when some are unused.
        private readonly Tensor? _usedRows;

        // RotatE phases are stored as raw values in the concepts' initialisation range and scaled
        // by π / range, as Sun et al. do: Adam's step size is then comparable for both, instead of
        // phases learning ~π/range times slower than the coordinates they rotate.
        private readonly double _phaseScale;

        // The numbers each step passes to TorchSharp, held for the run (see TorchScalars).
        private readonly Scalar _phaseScaleScalar;
        private readonly Scalar _margin;
        private readonly Scalar _adversarialTemperature;
        private readonly Scalar _uniformNegativeWeight;
        private Tensor? _bestConcepts;
        private Tensor? _bestRelations;
        private long _step;

        public TrainingState(EmbeddingModel model, TrainingOptions options, int n, int m, InitialVectors? initial, long[] unusedRows, Device device)
        {
            Model = model;
            _options = options;
            _device = device;
            _conceptCount = n;
            if (unusedRows.Length > 0)
            {
                UnusedRows = tensor(unusedRows, device: device);
                var unused = new HashSet<long>(unusedRows);
                _usedRows = tensor(Enumerable.Range(0, n).Select(row => (long)row).Where(row => !unused.Contains(row)).ToArray(), device: device);
            }

            _generator = new Generator(unchecked((ulong)options.Seed), device);
            int coordinates = model.Kind == EmbeddingModelKind.RotatE ? model.Dimension / 2 : model.Dimension;
            double range = (options.Margin + 2.0) / coordinates;
            _phaseScale = model.Kind == EmbeddingModelKind.RotatE ? Math.PI / range : 1.0;
            _phaseScaleScalar = _phaseScale.ToScalar();
            _margin = options.Margin.ToScalar();
            _adversarialTemperature = options.AdversarialTemperature.ToScalar();
            _uniformNegativeWeight = (1.0f / options.NegativeSamples).ToScalar();

            using (no_grad())
            {
                Tensor concepts = empty([n, model.Dimension], ScalarType.Float32, device).uniform_(-range, range, _generator);
                Tensor relations = empty([m, model.RelationDimension], ScalarType.Float32, device).uniform_(-range, range, _generator);
                if (initial is not null)
                {
                    CopyRows(concepts, 0, initial.Concepts, model.Dimension, 1.0);
                    for (int relation = 0; relation < initial.Relations.Length; relation++)
                    {
                        if (initial.Relations[relation] is { } vector)
                        {
                            CopyRows(relations, relation, vector, model.RelationDimension, 1.0 / _phaseScale);
                        }
                    }
                    if (options.FreezeInitialConcepts && initial.Concepts.Length > 0)
                    {
                        _trainableRows = ones([n, 1], ScalarType.Float32, device);
                        _trainableRows.narrow(0, 0, initial.Concepts.Length / model.Dimension).zero_();
                    }
                }

                _concepts = new Parameter(concepts, requires_grad: true);
                _relations = new Parameter(relations, requires_grad: true);
            }

            NormaliseConcepts();

            _optimizer = new AdamOptimizer([_concepts, _relations], options.LearningRate);
        }

        public EmbeddingModel Model { get; }

        /// <summary>The live concept parameter (borrowed).</summary>
        public Tensor Concepts => _concepts;

        /// <summary>Rows of deleted concepts, never ranked in validation; null when there are none.</summary>
        public Tensor? UnusedRows { get; }

        /// <summary>Relation vectors in the model's units (RotatE: phases); the caller disposes.</summary>
        public Tensor RelationVectors()
        {
            using Tensor detached = _relations.detach();
            return detached.mul(_phaseScaleScalar);
        }

        /// <summary>One pass over the shuffled triples; returns the mean batch loss.</summary>
        public double RunEpoch(Tensor triples, CancellationToken cancellationToken)
        {
            long count = triples.shape[0];
            int batchSize = _options.BatchSize;
            double lossSum = 0;
            int batches = 0;
            using Tensor order = randperm(count, ScalarType.Int64, _device, generator: _generator);
            for (long start = 0; start < count; start += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using IDisposable scope = NewDisposeScope();
                Tensor batch = triples.index_select(0, order.narrow(0, start, Math.Min(batchSize, count - start)));
                Tensor loss = Loss(batch);
                _optimizer.ZeroGradients();
                loss.backward();
                if (_trainableRows is not null)
                {
                    // Zero gradients keep Adam's moments at zero, so frozen rows never move.
                    _concepts.grad!.mul_(_trainableRows);
                }

                _optimizer.Step();
                NormaliseConcepts();

                lossSum += loss.item<float>();
                batches++;
            }

            return lossSum / Math.Max(1, batches);
        }

        /// <summary>
        /// Under the margin loss, puts every trainable concept row on the unit sphere, as TransE
        /// does (Bordes et al. 2013 normalise each entity to ‖e‖ = 1 before every step; relations are
        /// left free), since otherwise growing norms satisfy any margin. Keeping rows only inside the
        /// unit ball left some short of it (a tenth of Nations' below 0.8), and with rows of unequal
        /// norms a cosine or dot <c>c + r</c> search of the written vectors ranked otherwise than the
        /// model's L2 distance, which it matches when all rows have one norm.
        /// </summary>
        private void NormaliseConcepts()
        {
            if (_options.Loss != TrainingLoss.Margin)
            {
                return;
            }

            using IDisposable scope = NewDisposeScope();
            using (no_grad())
            {
                Tensor normalised = nn.functional.normalize(_concepts, 2, 1);
                // Frozen rows keep their given vectors, whatever their norm.
                _concepts.copy_(_trainableRows is null ? normalised : where(_trainableRows.to_type(ScalarType.Bool), normalised, _concepts));
            }
        }

        public void SnapshotBest()
        {
            _bestConcepts?.Dispose();
            _bestRelations?.Dispose();
            using Tensor detached = _concepts.detach();
            _bestConcepts = detached.clone();
            _bestRelations = RelationVectors();
        }

        public (float[] Concepts, float[] Relations) Export(bool useBest)
        {
            // Every view and host copy made here is freed with the scope, not left to the finalizer
            // (on a GPU, a copy of W per export).
            using (NewDisposeScope())
            using (no_grad())
            {
                Tensor c = useBest && _bestConcepts is not null ? _bestConcepts : _concepts;
                Tensor r = useBest && _bestRelations is not null ? _bestRelations : RelationVectors();
                return (c.detach().cpu().data<float>().ToArray(), r.detach().cpu().data<float>().ToArray());
            }
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            _concepts.Dispose();
            _relations.Dispose();
            _trainableRows?.Dispose();
            _usedRows?.Dispose();
            UnusedRows?.Dispose();
            _bestConcepts?.Dispose();
            _bestRelations?.Dispose();
            _generator.Dispose();
            _phaseScaleScalar.Dispose();
            _margin.Dispose();
            _adversarialTemperature.Dispose();
            _uniformNegativeWeight.Dispose();
        }

        /// <summary>The batch loss. Alternate batches corrupt the tail and the head (Sun et al.):
        /// a tail batch scores <c>Forward(h, r)</c> against tails, a head batch
        /// <c>Inverse(t, r)</c> against heads, which is the same distance for both models.</summary>
        private Tensor Loss(Tensor batch)
        {
            long b = batch.shape[0];
            int k = _options.NegativeSamples;
            bool corruptTail = (_step++ & 1) == 0;
            Tensor relations = _relations.index_select(0, batch.select(1, 1));
            if (_phaseScale != 1.0)
            {
                relations = relations.mul(_phaseScaleScalar);
            }

            Tensor given = _concepts.index_select(0, batch.select(1, corruptTail ? 0 : 2));
            Tensor answer = _concepts.index_select(0, batch.select(1, corruptTail ? 2 : 0));
            Tensor queries = corruptTail ? Model.ForwardBatch(given, relations) : Model.InverseBatch(given, relations);
            Tensor negativeIds = _usedRows is null
                ? randint(0, _conceptCount, [b * k], ScalarType.Int64, _device, generator: _generator)
                : _usedRows.index_select(0, randint(0, _usedRows.shape[0], [b * k], ScalarType.Int64, _device, generator: _generator));
            Tensor negatives = _concepts.index_select(0, negativeIds).view(b, k, Model.Dimension);

            Tensor positiveDistance = Model.DistanceBatch(queries, answer);
            Tensor negativeDistance = Model.DistanceBatch(queries.unsqueeze(1), negatives);
            Tensor weights = _options.AdversarialTemperature > 0
                ? MarginMinus(negativeDistance).mul(_adversarialTemperature).softmax(1).detach()
                : full([b, k], _uniformNegativeWeight, ScalarType.Float32, _device);

            if (_options.Loss == TrainingLoss.Margin)
            {
                return (weights * (positiveDistance.unsqueeze(1) - negativeDistance).add(_margin, TorchScalars.One).relu()).sum(1).mean();
            }

            Tensor positiveLoss = nn.functional.logsigmoid(MarginMinus(positiveDistance)).mean().neg();
            Tensor negativeLoss = (weights * nn.functional.logsigmoid(negativeDistance.sub(_margin))).sum(1).mean().neg();
            return positiveLoss.add(negativeLoss, TorchScalars.One).div(TorchScalars.Two);
        }

        /// <summary><c>γ − distance</c>, computed as TorchSharp's <c>float - Tensor</c> operator does.</summary>
        private Tensor MarginMinus(Tensor distance) => distance.negative().add(_margin, TorchScalars.One);

        private static void CopyRows(Tensor target, int firstRow, float[] rows, int width, double scale)
        {
            if (rows.Length == 0)
            {
                return;
            }

            using IDisposable scope = NewDisposeScope();
            Tensor source = tensor(rows, [rows.Length / width, width], ScalarType.Float32).to(target.device);
            using Scalar scaleScalar = scale.ToScalar();
            target.narrow(0, firstRow, rows.Length / width).copy_(source.mul(scaleScalar));
        }
    }
}
