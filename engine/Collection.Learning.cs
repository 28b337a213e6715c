using AssocDB.Engine.Learning;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>
    /// Trains concept and relation vectors on the collection's stored facts (TransE or RotatE, on
    /// the collection's device) and writes them into the concept matrix and the relation vectors
    /// atomically and durably, in one log entry. The collection stays readable and writable while
    /// training runs on a snapshot; concepts deleted or added meanwhile are left as they are.
    /// Training warm-starts from the current vectors (a later run continues an earlier one).
    /// </summary>
    /// <param name="options">Hyper-parameters; <see cref="TrainingOptions.Dimension"/> is replaced by the collection's.</param>
    /// <param name="validationFraction">Share of facts held out (seeded) for early stopping, 0 ≤ x &lt; 0.5.</param>
    /// <param name="progress">Receives one report per epoch.</param>
    /// <param name="cancellationToken">Cancels training; nothing is written then.</param>
    public async Task<Result<TrainingReport>> TrainAsync(
        TrainingOptions options, double validationFraction = 0.05, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options = options with { Dimension = Dimension };
        // The dimension is the collection's, not the caller's: what the caller can change is the model.
        EngineError? error = (options.Model == EmbeddingModelKind.RotatE && Dimension % 2 != 0
                ? EngineError.Invalid("model", $"is RotatE (the default), which pairs dimensions into complex numbers and needs an even dimension; this collection's is {Dimension}: train TransE instead")
                : options.Validate())
            ?? (validationFraction is >= 0 and < 0.5 ? null : EngineError.Invalid("validation_fraction", $"is {validationFraction}; it must be in [0, 0.5)"));
        if (error is not null)
        {
            return error;
        }

        Result<TrainingSnapshot> taken = Read<TrainingSnapshot>(() => TakeTrainingSnapshot(options.Model));
        if (!taken.IsOk)
        {
            return taken.Error!;
        }

        TrainingSnapshot snapshot = taken.Value;

        if (snapshot.Facts.Length == 0)
        {
            return new EngineError(ErrorCode.FailedPrecondition, "collection", $"collection '{Name}' has no facts to train on");
        }

        (Triple[] train, Triple[] validation) = Split(snapshot.Facts, validationFraction, options.Seed);
        var trainedIds = TrainedIds.Of(train, snapshot.ConceptNames.Length);
        var model = new EmbeddingModel(options.Model, Dimension, options.Norm);
        // The result is written as one log entry, atomically: refuse now, not after every epoch, a
        // collection whose trained records cannot fit one. Vectors have a fixed width, so the
        // records as they are now, with placeholder vectors, encode to the size the result will
        // (without initial vectors: no row has changed since the snapshot, so none is compared).
        float[] conceptPlaceholder = new float[Dimension], relationPlaceholder = new float[model.RelationDimension];
        Result<long> encoded = Read<long>(() => EncodedSize(
            TrainedBatch(snapshot with { Initial = null }, trainedIds, model, _ => conceptPlaceholder, _ => relationPlaceholder), _log.MaxEntryBytes));
        if (!encoded.IsOk)
        {
            return encoded.Error!;
        }

        long entryBytes = encoded.Value;
        if (entryBytes > _log.MaxEntryBytes)
        {
            return new EngineError(
                ErrorCode.ResourceExhausted,
                "collection",
                $"collection '{Name}': its trained concepts and relations encode to {entryBytes} bytes in one log entry, and its log pages hold {_log.MaxEntryBytes} (a collection created with a larger LogPageSizeBits can be trained)");
        }

        var trainer = new EmbeddingTrainer(options, _matrix.Device);
        Result<TrainedEmbedding> trained = await Task.Run(
            () => trainer.Train(train, validation, snapshot.ConceptNames.Length, snapshot.RelationNames.Length, snapshot.Initial, snapshot.FreeRows, progress, cancellationToken),
            cancellationToken);
        if (!trained.IsOk)
        {
            return trained.Error!;
        }

        TrainedEmbedding embedding = trained.Value;
        return await WriteAsync(() => PlanTrainedVectors(snapshot, trainedIds, embedding), "vectors", CancellationToken.None);
    }

    /// <summary>
    /// Mines relation properties from the stored facts by counting, as AMIE does: symmetry, inverse
    /// pairs, transitivity and length-2 compositions, each with support, head coverage and PCA
    /// confidence. Nothing is changed; apply the results with <see cref="ApplyLearnedPropertiesAsync"/>.
    /// </summary>
    public Result<MiningReport> MineProperties(MiningOptions? options = null, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        Result<TrainingSnapshot> taken = Read<TrainingSnapshot>(() => TakeTrainingSnapshot(model: null));
        if (!taken.IsOk)
        {
            return taken.Error!;
        }

        TrainingSnapshot snapshot = taken.Value;

        Result<MiningResult> mined = new PropertyMiner(options).Mine(
            snapshot.Facts, snapshot.ConceptNames.Length, snapshot.RelationNames.Length, progress, cancellationToken);
        if (!mined.IsOk)
        {
            return mined.Error!;
        }

        MiningResult result = mined.Value;
        string Name(int relation) => snapshot.RelationNames[relation];
        LearnedProperty Property(PropertyKind kind, int head, RuleEvidence evidence, int other = -1, int first = -1, int second = -1) => new(
            kind,
            Name(head),
            other >= 0 ? Name(other) : null,
            first >= 0 ? Name(first) : null,
            second >= 0 ? Name(second) : null,
            new RuleStatistics(evidence.Support, evidence.BodySize, evidence.Confidence, evidence.PcaConfidence, evidence.HeadCoverage));

        var accepted = result.Symmetric.Select(rule => Property(PropertyKind.Symmetric, rule.Relation, rule.Evidence))
            .Concat(result.Inverses.Select(rule => Property(PropertyKind.Inverse, rule.Head, rule.Evidence, other: rule.Body)))
            .Concat(result.Transitive.Select(rule => Property(PropertyKind.Transitive, rule.Relation, rule.Evidence)))
            .Concat(result.Compositions.Select(rule => Property(PropertyKind.Composition, rule.Head, rule.Evidence, first: rule.First, second: rule.Second)))
            .OrderByDescending(property => property.Statistics.PcaConfidence)
            .ThenByDescending(property => property.Statistics.Support)
            .ToList();
        var symmetry = result.SymmetryByRelation.Select(rule => Property(PropertyKind.Symmetric, rule.Relation, rule.Evidence)).ToList();
        return new MiningReport(accepted, symmetry, result.DistinctFacts, result.Elapsed, result.UnkeptRules);
    }

    /// <summary>
    /// Applies mined properties. As learned (the default) they are kept beside the declared ones and
    /// used by <c>related</c>, whose answers through them are of kind learned, scored by the product
    /// of confidences; declared properties always win. With <paramref name="declare"/> they become
    /// declared properties. Returns how many properties changed something.
    /// </summary>
    public Task<Result<int>> ApplyLearnedPropertiesAsync(IReadOnlyList<LearnedProperty> properties, bool declare = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(properties);
        return WriteAsync(() => PlanLearnedProperties(properties, declare), "properties", cancellationToken);
    }

    /// <summary>
    /// Filtered link prediction on <paramref name="test"/> with the current vectors: for each fact the
    /// true tail is ranked among all concepts for <c>(h, r, ?)</c> and the true head for
    /// <c>(?, r, t)</c>, other stored or test facts filtered out, ties ranked as the mean of the
    /// optimistic and pessimistic rank. One model scores them all, RotatE or TransE, whichever most
    /// of the test facts' relations were last trained with (TransE with the norm most of them were
    /// trained with). Facts naming unknown concepts, relations without a vector, or
    /// relations of the other model are skipped and counted. <paramref name="progress"/> receives the
    /// share of the facts ranked (0..1) as ranking goes.
    /// </summary>
    public Result<EvaluationReport> Evaluate(IReadOnlyList<FactKey> test, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(test);
        if (test.Count == 0)
        {
            return EngineError.Invalid("test", "must hold at least one fact");
        }

        for (int i = 0; i < test.Count; i++)
        {
            if (test[i] is not { Head: not null, Relation: not null, Tail: not null })
            {
                return EngineError.Invalid($"test[{i}]", "must be a fact with a head, a relation and a tail");
            }
        }

        Result<(EmbeddingModel, float[], float[], Triple[], Triple[], string[], int, int[])> read =
            Read<(EmbeddingModel, float[], float[], Triple[], Triple[], string[], int, int[])>(() =>
        {
            // One model ranks every fact: the one most of the test facts' relations were last trained
            // with (a relation keeps a rotation from an earlier RotatE run that a later TransE run had
            // no facts to retrain), TransE with the norm most of them were trained with. The facts of
            // relations of the other model are skipped and counted; given vectors and estimates are
            // translations.
            int rotations = 0, l1 = 0, l2 = 0;
            foreach (FactKey fact in test)
            {
                if (_relations.TryGetId(fact.Relation, out int id) && _relations[id] is { Trained: true } trained)
                {
                    if (trained.Operator == RelationOperator.Rotation)
                    {
                        rotations++;
                    }
                    else if (trained.TrainedNorm == DistanceNorm.L2)
                    {
                        l2++;
                    }
                    else
                    {
                        l1++;
                    }
                }
            }

            bool rotation = rotations > l1 + l2;
            DistanceNorm norm = l2 > l1 ? DistanceNorm.L2 : DistanceNorm.L1;
            var embedding = new EmbeddingModel(rotation ? EmbeddingModelKind.RotatE : EmbeddingModelKind.TransE, Dimension, norm);
            int width = embedding.RelationDimension;
            var relationVectors = new float[_relations.Count * width];
            var usable = new bool[_relations.Count];
            foreach (RelationRecord relation in _relations.All)
            {
                if (EffectiveVector(relation).Vector is { } vector && vector.Length == width
                    && (relation.Operator == RelationOperator.Rotation) == rotation)
                {
                    vector.CopyTo(relationVectors, relation.Id * width);
                    usable[relation.Id] = true;
                }
            }

            var testTriples = new List<Triple>(test.Count);
            int unknown = 0;
            foreach (FactKey fact in test)
            {
                if (_concepts.TryGetId(fact.Head, out int head) && _relations.TryGetId(fact.Relation, out int relation)
                    && _concepts.TryGetId(fact.Tail, out int tail) && usable[relation])
                {
                    testTriples.Add(new Triple(head, relation, tail));
                }
                else
                {
                    unknown++;
                }
            }

            int[] free = [.. _concepts.FreeIds];
            return (embedding, ConceptRows(_concepts.IdLimit), relationVectors, testTriples.ToArray(), StoredTriples(),
                _relations.All.Select(relation => relation.Name).ToArray(), unknown, free);
        });
        if (!read.IsOk)
        {
            return read.Error!;
        }

        var (model, concepts, relations, triples, stored, names, skipped, unused) = read.Value;
        if (triples.Length == 0)
        {
            return new EngineError(ErrorCode.FailedPrecondition, "test", $"none of the {test.Count} test facts can be ranked (unknown names, or relations without vectors)");
        }

        // Indexed once the lock is released: over millions of facts that takes seconds, which held
        // a waiting write, and every read queued behind it, on the collection.
        var known = new KnownTriples(stored, triples);

        Result<LinkPredictionResult> result = new LinkPredictionEvaluator(_matrix.Device).Evaluate(model, concepts, relations, triples, known, unused, progress, cancellationToken);
        return result.IsOk ? new EvaluationReport(result.Value, names, skipped) : result.Error!;
    }

    /// <summary>The relations (in id order) and concepts (by id) a run's training facts name: those
    /// whose vectors it writes.</summary>
    private sealed record TrainedIds(int[] Relations, bool[] Concepts)
    {
        public static TrainedIds Of(Triple[] train, int conceptCount)
        {
            bool[] concepts = new bool[conceptCount];
            foreach (Triple fact in train)
            {
                concepts[fact.Head] = concepts[fact.Tail] = true;
            }

            return new TrainedIds([.. train.Select(triple => triple.Relation).Distinct().Order()], concepts);
        }
    }

    /// <summary>Facts and vectors training or mining reads, taken under the read lock.</summary>
    /// <remarks><see cref="RelationVectors"/> are the relations' given or trained vectors when it was
    /// taken: a relation whose vector is written while training runs keeps that write;
    /// <see cref="FreeRows"/> are the concept ids free when it was taken, whose names are null.</remarks>
    private sealed record TrainingSnapshot(
        Triple[] Facts, string?[] ConceptNames, int[] ConceptDeletes, int[] FreeRows, string[] RelationNames, float[]?[] RelationVectors, InitialVectors? Initial);

    private TrainingSnapshot TakeTrainingSnapshot(EmbeddingModelKind? model)
    {
        // Ids above the highest live concept are left out: a reopen after a checkpoint rebuilds the
        // id limit from the stored concepts and forgets them, and the trainer's draws (initial rows,
        // negatives) depend on how many rows it is given, so a seeded run would train differently
        // after a reopen.
        int limit = _concepts.IdLimit;
        while (limit > 0 && !_concepts.IsLive(limit - 1))
        {
            limit--;
        }

        string?[] conceptNames = Enumerable.Range(0, limit).Select(id => _concepts.IsLive(id) ? _concepts.Name(id) : null).ToArray();
        string[] relationNames = _relations.All.Select(relation => relation.Name).ToArray();
        float[]?[] relationVectors = _relations.All.Select(relation => relation.Vector).ToArray();
        InitialVectors? initial = model is { } kind ? new InitialVectors(ConceptRows(limit), TrainedRelationVectors(kind)) : null;
        int[] conceptDeletes = [.. Enumerable.Range(0, limit).Select(_concepts.Deletes)];
        return new TrainingSnapshot(StoredTriples(), conceptNames, conceptDeletes, [.. _concepts.FreeIds.TakeWhile(id => id < limit)], relationNames, relationVectors, initial);
    }

    private Triple[] StoredTriples()
    {
        var facts = new List<Triple>(_edges.Count);
        for (int edge = 0; edge < _edges.IdLimit; edge++)
        {
            if (_edges.IsLive(edge))
            {
                facts.Add(new Triple(_edges.Head(edge), _edges.Relation(edge), _edges.Tail(edge)));
            }
        }

        return [.. facts];
    }

    /// <summary>Rows 0..<paramref name="limit"/> of W, row-major (free rows are zero).</summary>
    private float[] ConceptRows(int limit) => limit == 0 ? [] : _matrix.GetRows(Enumerable.Range(0, limit).ToArray());

    /// <summary>Relation vectors to warm-start from, by id: those an earlier run of the same model
    /// trained; the others (null) start where the trainer starts every relation.</summary>
    private float[]?[] TrainedRelationVectors(EmbeddingModelKind model)
    {
        RelationOperator wanted = model == EmbeddingModelKind.RotatE ? RelationOperator.Rotation : RelationOperator.Translation;
        int width = model == EmbeddingModelKind.RotatE ? Dimension / 2 : Dimension;
        return [.. _relations.All.Select(relation => relation.Trained && relation.Operator == wanted && relation.Vector?.Length == width ? relation.Vector : null)];
    }

    /// <summary>The bytes <paramref name="batch"/> encodes to as one log entry, or a count past
    /// <paramref name="limit"/>: encoded a thousand records at a time, so a batch too large for any
    /// entry (a memory stream stops at 2 GiB) is never held whole.</summary>
    private static long EncodedSize(List<Mutation> batch, long limit)
    {
        using var stream = new MemoryStream();
        long header = RecordCodec.EncodeBatch(0, [], stream, null, out _, out _).Length;
        long total = header;
        for (int start = 0; start < batch.Count && total <= limit; start += 1024)
        {
            total += RecordCodec.EncodeBatch(0, batch.GetRange(start, Math.Min(1024, batch.Count - start)), stream, null, out _, out _).Length - header;
        }

        return total;
    }

    private static (Triple[] Train, Triple[] Validation) Split(Triple[] facts, double fraction, long seed)
    {
        int held = (int)(facts.Length * fraction);
        if (held == 0)
        {
            return (facts, []);
        }

        Triple[] shuffled = (Triple[])facts.Clone();
        new Random(unchecked((int)seed)).Shuffle(shuffled);
        return (shuffled[held..], shuffled[..held]);
    }

    private Result<Planned<TrainingReport>> PlanTrainedVectors(TrainingSnapshot snapshot, TrainedIds trained, TrainedEmbedding embedding)
    {
        if (!embedding.Concepts.All(float.IsFinite) || !embedding.Relations.All(float.IsFinite))
        {
            return new EngineError(ErrorCode.FailedPrecondition, "learning_rate", "training produced vectors that are not finite; nothing was written (lower the learning rate)");
        }

        int width = embedding.Model.RelationDimension;
        List<Mutation> batch = TrainedBatch(
            snapshot, trained, embedding.Model, id => embedding.Concepts.AsSpan(id * Dimension, Dimension).ToArray(), id => embedding.Relations.AsSpan(id * width, width).ToArray());
        int relationsWritten = batch.Count(mutation => mutation is Mutation.PutRelation);
        var report = new TrainingReport(
            embedding.Model.Kind.ToString(), embedding.EpochsRun, embedding.BestEpoch, embedding.BestValidationMrr, embedding.StopReason.ToString(),
            embedding.TriplesPerSecond, embedding.Elapsed, batch.Count - relationsWritten, relationsWritten);
        return new Planned<TrainingReport>(batch, _ => report);
    }

    /// <summary>The records a training run writes: every concept of a training fact that is still as
    /// it was in the snapshot (same name, and same vector when the snapshot holds the initial
    /// vectors), and the relations it trained on whose vector is still the snapshot's. A relation or
    /// concept in no training fact (none at all, or only held-out validation ones) is left alone:
    /// what moved it was no fact of its own (a relation got no gradient, a concept only its turns as
    /// a negative), so a vector the client gave it would be replaced by a meaningless one.</summary>
    private List<Mutation> TrainedBatch(
        TrainingSnapshot snapshot, TrainedIds trained, EmbeddingModel model, Func<int, float[]> conceptVector, Func<int, float[]> relationVector)
    {
        var batch = new List<Mutation>();
        float[] scratch = new float[Dimension];
        for (int id = 0; id < snapshot.ConceptNames.Length; id++)
        {
            // A concept deleted during training (its row reused, or it added again under its name,
            // which gives it the same row and vector) keeps what it has now, and so does one whose
            // vector was written meanwhile: that write was acknowledged after the snapshot the
            // training started from.
            if (trained.Concepts[id] && snapshot.ConceptNames[id] is { } name && _concepts.IsLive(id) && _concepts.Name(id) == name && _concepts.Deletes(id) == snapshot.ConceptDeletes[id]
                && (snapshot.Initial is not { } initial || _matrix.RowView(id, scratch).SequenceEqual(initial.Concepts.AsSpan(id * Dimension, Dimension))))
            {
                batch.Add(new Mutation.PutConcept(new ConceptRecord(id, name, conceptVector(id), _concepts.Metadata(id))));
            }
        }

        RelationOperator @operator = model.Kind == EmbeddingModelKind.RotatE ? RelationOperator.Rotation : RelationOperator.Translation;
        foreach (int id in trained.Relations.Where(id => SameVector(_relations[id].Vector, snapshot.RelationVectors[id])))
        {
            batch.Add(new Mutation.PutRelation(_relations[id] with
            {
                Vector = relationVector(id),
                Operator = @operator,
                Trained = true,
                TrainedNorm = model.Norm,
            }));
        }

        return batch;
    }

    private static bool SameVector(float[]? current, float[]? snapshot) =>
        current is null ? snapshot is null : snapshot is not null && current.AsSpan().SequenceEqual(snapshot);

    private Result<Planned<int>> PlanLearnedProperties(IReadOnlyList<LearnedProperty> properties, bool declare)
    {
        var updated = new Dictionary<int, RelationRecord>();
        var learnedLists = new Dictionary<int, LearnedRuleList>();
        RelationRecord Current(int id) => updated.GetValueOrDefault(id) ?? _relations[id];
        int applied = 0;
        for (int i = 0; i < properties.Count; i++)
        {
            LearnedProperty property = properties[i];
            if (property is null)
            {
                return EngineError.Invalid($"properties[{i}]", "must not be null");
            }

            Result<(int Head, int Other, int First, int Second)> resolved = ResolveProperty(property);
            if (!resolved.IsOk)
            {
                return resolved.Error!.At($"properties[{i}]");
            }

            (int head, int other, int first, int second) = resolved.Value;
            RelationRecord record = Current(head);
            if (!declare)
            {
                if (IsDeclared(record, property.Kind, other, first, second))
                {
                    continue;
                }

                if (!learnedLists.TryGetValue(head, out LearnedRuleList? learned))
                {
                    learnedLists[head] = learned = new LearnedRuleList(record.Learned);
                }

                int before = learned.Count;
                if (!learned.Put(new LearnedRule(property.Kind, other, first, second, property.Statistics)))
                {
                    continue; // already in place with the same evidence: nothing to count or write
                }

                // Only growth past a cap is refused, so a relation stored with more rules by an
                // earlier version still takes refreshes.
                if (learned.Count > MaxLearnedRules && learned.Count > before)
                {
                    return EngineError.Invalid($"properties[{i}]", $"would give relation '{property.Relation}' {learned.Count} learned rules; a relation may keep at most {MaxLearnedRules}");
                }

                applied++;
                continue;
            }

            RelationRecord changed = Declare(record, property.Kind, other, first, second, Current);
            if (changed.Compositions.Count > MaxCompositions && changed.Compositions.Count > record.Compositions.Count)
            {
                return EngineError.Invalid($"properties[{i}]", $"would give relation '{property.Relation}' {changed.Compositions.Count} declared composition rules; a relation may have at most {MaxCompositions}");
            }

            if (changed != record)
            {
                updated[head] = changed;
                if (declare && property.Kind == PropertyKind.Inverse)
                {
                    updated[other] = Current(other) with { InverseId = head };
                }

                applied++;
            }
        }

        foreach ((int id, LearnedRuleList learned) in learnedLists.Where(pair => pair.Value.Changed))
        {
            updated[id] = Current(id) with { Learned = learned.ToList() };
        }

        var batch = updated.OrderBy(pair => pair.Key).Select(pair => (Mutation)new Mutation.PutRelation(pair.Value)).ToList();
        return new Planned<int>(batch, _ => applied);
    }

    private Result<(int Head, int Other, int First, int Second)> ResolveProperty(LearnedProperty property)
    {
        // An empty or malformed name is the request's fault (INVALID_ARGUMENT), a well-formed unknown
        // one a missing relation (NOT_FOUND).
        Result<int> Resolve(string? name, string field) =>
            Validation.Name(name, field) is { } invalid ? invalid
            : _relations.TryGetId(name!, out int id) ? id
            : RelationNotFound(field, name!);

        Result<int> head = Resolve(property.Relation, "relation");
        if (!head.IsOk)
        {
            return head.Error!;
        }

        if (!Enum.IsDefined(property.Kind))
        {
            return EngineError.Invalid("kind", $"{(int)property.Kind} is not symmetric, inverse, transitive or composition");
        }

        if (property.Statistics is not { } statistics || !(statistics.PcaConfidence is > 0 and <= 1))
        {
            return EngineError.Invalid("statistics.pca_confidence", "must be in (0, 1]");
        }

        // The evidence is stored with the rule and listed with it: counts no data can produce would
        // be kept (durably) as if mined.
        EngineError? impossible =
            statistics.Support < 0 ? EngineError.Invalid("statistics.support", $"is {statistics.Support}; a count of facts cannot be negative")
            : statistics.BodySize < statistics.Support ? EngineError.Invalid("statistics.body_size", $"is {statistics.BodySize}; the body holds at least the {statistics.Support} facts the rule supports")
            : !(statistics.Confidence is >= 0 and <= 1) ? EngineError.Invalid("statistics.confidence", $"is {statistics.Confidence}; it must be in [0, 1]")
            : !(statistics.HeadCoverage is >= 0 and <= 1) ? EngineError.Invalid("statistics.head_coverage", $"is {statistics.HeadCoverage}; it must be in [0, 1]")
            : null;
        if (impossible is not null)
        {
            return impossible;
        }

        Result<int> other = property.Kind == PropertyKind.Inverse ? Resolve(property.Inverse, "inverse") : -1;
        Result<int> first = property.Kind == PropertyKind.Composition ? Resolve(property.First, "first") : -1;
        Result<int> second = property.Kind == PropertyKind.Composition ? Resolve(property.Second, "second") : -1;
        foreach (Result<int> part in (Result<int>[])[other, first, second])
        {
            if (!part.IsOk)
            {
                return part.Error!;
            }
        }

        return (head.Value, other.Value, first.Value, second.Value);
    }

    /// <summary>Whether a declared property already says what a learned one would.</summary>
    private static bool IsDeclared(RelationRecord record, PropertyKind kind, int other, int first, int second) => kind switch
    {
        PropertyKind.Symmetric => record.Symmetric,
        PropertyKind.Transitive => record.Transitive,
        PropertyKind.Inverse => record.InverseId == other,
        _ => record.Compositions.Contains((first, second)),
    };

    /// <summary>
    /// A relation's learned rules while properties are applied to it. A rule refreshed with new
    /// evidence moves to the end, as when the list was rebuilt for each property; that rebuild (a
    /// pass and a copy of up to <see cref="MaxLearnedRules"/> rules per property) made applying a
    /// million properties billions of steps, holding the writer.
    /// </summary>
    private sealed class LearnedRuleList
    {
        private readonly List<LearnedRule?> _rules;
        private readonly Dictionary<(PropertyKind, int, int, int), int> _at = [];

        public LearnedRuleList(IReadOnlyList<LearnedRule>? rules)
        {
            _rules = [.. rules ?? []];
            for (int i = 0; i < _rules.Count; i++)
            {
                _at[Key(_rules[i]!)] = i;
            }

            Count = _rules.Count;
        }

        /// <summary>Rules held.</summary>
        public int Count { get; private set; }

        /// <summary>Whether a rule was added or refreshed.</summary>
        public bool Changed { get; private set; }

        /// <summary>Adds a rule, or refreshes the one of its kind and relations; false when it is in
        /// place already with the same evidence.</summary>
        public bool Put(LearnedRule rule)
        {
            (PropertyKind, int, int, int) key = Key(rule);
            if (_at.TryGetValue(key, out int at))
            {
                if (_rules[at] == rule)
                {
                    return false;
                }

                _rules[at] = null;
                Count--;
            }

            _at[key] = _rules.Count;
            _rules.Add(rule);
            Count++;
            Changed = true;
            return true;
        }

        public List<LearnedRule> ToList() => [.. _rules.OfType<LearnedRule>()];

        private static (PropertyKind, int, int, int) Key(LearnedRule rule) => (rule.Kind, rule.Other, rule.First, rule.Second);
    }

    /// <summary>Turns a property into a declared one (an inverse only when neither side has one).</summary>
    private static RelationRecord Declare(RelationRecord record, PropertyKind kind, int other, int first, int second, Func<int, RelationRecord> current) => kind switch
    {
        PropertyKind.Symmetric when !record.Symmetric => record with { Symmetric = true },
        PropertyKind.Transitive when !record.Transitive => record with { Transitive = true },
        PropertyKind.Inverse when record.InverseId < 0 && other != record.Id && current(other).InverseId < 0 => record with { InverseId = other },
        PropertyKind.Composition when !record.Compositions.Contains((first, second)) => record with { Compositions = [.. record.Compositions, (first, second)] },
        _ => record,
    };
}
