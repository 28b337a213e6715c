using System.Collections.Concurrent;
using AssocDB.Engine.Learning;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>The most composition rules one relation may declare: far more than a schema needs,
    /// and few enough that the relation's record stays small.</summary>
    public const int MaxCompositions = 1024;

    /// <summary>The most learned rules one relation may keep (53 bytes each in its record, so about
    /// 217 KB at most): mining a large graph can accept thousands of compositions for one head, and
    /// a record that outgrew the state store's page could not be written at all.</summary>
    public const int MaxLearnedRules = 4096;

    private const int ValidationsPerTask = 2048;

    /// <summary>Creates or updates concepts. A missing vector keeps the current one (or, for a new
    /// concept, derives one from the name); missing metadata keeps the current metadata.</summary>
    public Task<Result<WriteSummary>> UpsertConceptsAsync(IReadOnlyList<ConceptInput> concepts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(concepts);
        return WriteAsync(() => PlanConceptUpserts(concepts), "concepts", cancellationToken);
    }

    /// <summary>Deletes concepts and every fact touching them; their row ids are freed for reuse. A
    /// name that does not exist refuses the batch (NotFound), so a typo deletes nothing, unless
    /// <paramref name="missingOk"/>: then it counts as unchanged, which makes a retried delete
    /// succeed.</summary>
    public Task<Result<WriteSummary>> DeleteConceptsAsync(IReadOnlyList<string> names, bool missingOk = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(names);
        return WriteAsync(
            () => PlanConceptDeletes(names, missingOk),
            "names",
            cancellationToken,
            tooLarge: "a concept's delete deletes every fact touching it in the same write, so delete fewer concepts, "
                + "or for a concept with that many facts, remove its facts first, a batch at a time, then delete it");
    }

    /// <summary>
    /// Defines a relation or updates its properties. Declaring <c>A</c> inverse of <c>B</c> makes
    /// <c>B</c> inverse of <c>A</c> (creating B if needed) and releases their previous partners; an
    /// empty <see cref="RelationSpec.InverseOf"/> removes the inverse. Compositions given replace the
    /// relation's rules and must name existing relations.
    /// </summary>
    public Task<Result<RelationInfo>> DefineRelationAsync(RelationSpec spec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return WriteAsync(() => PlanRelation(spec), "compositions", cancellationToken);
    }

    /// <summary>Adds facts. Unknown concepts and relations are created; a fact already stored is kept
    /// once (its weight and payload are updated if they differ).</summary>
    public Task<Result<WriteSummary>> AddFactsAsync(IReadOnlyList<FactInput> facts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(facts);
        return WriteAsync(() => PlanFactAdds(facts), "facts", cancellationToken);
    }

    /// <summary>Removes facts; facts that are not stored count as unchanged.</summary>
    public Task<Result<WriteSummary>> RemoveFactsAsync(IReadOnlyList<FactKey> facts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(facts);
        return WriteAsync(() => PlanFactRemovals(facts), "facts", cancellationToken);
    }

    private Result<Planned<WriteSummary>> PlanConceptUpserts(IReadOnlyList<ConceptInput> concepts)
    {
        if (FirstError(concepts.Count, i => ValidateConcept(concepts[i], i)) is { } error)
        {
            return error;
        }

        var planner = new BatchPlanner(this);
        WriteSummary summary = planner.UpsertConcepts(concepts);
        return new Planned<WriteSummary>(planner.Complete(), _ => summary);
    }

    /// <summary>
    /// Each item's validation error by index (null where valid), or null when every item is valid;
    /// a large batch is checked on all cores. The array is made at the first error only: a bulk
    /// load's batches are valid, and an array per batch was 5 % of all it allocated.
    /// </summary>
    private static EngineError?[]? ValidateAll(int count, Func<int, EngineError?> check)
    {
        EngineError?[]? errors = null;
        InParallel(count, ValidationsPerTask, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                if (check(i) is { } error)
                {
                    // Ranges run side by side: the first to find an error makes the array for all.
                    Interlocked.CompareExchange(ref errors, new EngineError?[count], null);
                    errors[i] = error;
                }
            }
        });
        return errors;
    }

    /// <summary>The error of the lowest-numbered invalid item, or null.</summary>
    private static EngineError? FirstError(int count, Func<int, EngineError?> check) =>
        ValidateAll(count, check) is { } errors ? Array.Find(errors, error => error is not null) : null;

    /// <summary>Runs <paramref name="body"/> over [0, count) in ranges of <paramref name="perTask"/>,
    /// on all cores when there is more than one range.</summary>
    private static void InParallel(int count, int perTask, Action<int, int> body)
    {
        if (count <= perTask)
        {
            body(0, count);
            return;
        }

        Parallel.ForEach(Partitioner.Create(0, count, perTask), range => body(range.Item1, range.Item2));
    }

    private EngineError? ValidateConcept(ConceptInput? input, int index)
    {
        if (input is null)
        {
            return EngineError.Invalid($"concepts[{index}]", "must not be null");
        }

        return (Validation.Name(input.Name, "name")
            ?? Validation.Vector(input.Vector, Dimension, "vector", cosineRow: _manifest.Metric == Metric.Cosine)
            ?? Validation.Map(input.Metadata, "metadata"))?.At($"concepts[{index}]");
    }

    private static EngineError? ValidateFact(FactReader facts, int index)
    {
        if (facts.IsNull(index))
        {
            return EngineError.Invalid($"facts[{index}]", "must not be null");
        }

        FactReader.Fact fact = facts[index];
        return (Validation.Name(fact.Head, "head")
            ?? Validation.Name(fact.Relation, "relation")
            ?? Validation.Name(fact.Tail, "tail")
            ?? Validation.Weight(fact.Weight, "weight")
            ?? Validation.Map(fact.Payload, "payload"))?.At($"facts[{index}]");
    }

    private ConceptRecord? CurrentConcept(string name) =>
        _concepts.TryGetId(name, out int id) ? new ConceptRecord(id, name, _matrix.GetRow(id), _concepts.Metadata(id)) : null;

    private Result<Planned<WriteSummary>> PlanConceptDeletes(IReadOnlyList<string> names, bool missingOk)
    {
        var conceptIds = new SortedSet<int>();
        for (int i = 0; i < names.Count; i++)
        {
            if (Validation.Name(names[i], $"names[{i}]") is { } error)
            {
                return error;
            }

            if (_concepts.TryGetId(names[i], out int id))
            {
                conceptIds.Add(id);
            }
            else if (!missingOk)
            {
                return EngineError.NotFound($"names[{i}]", $"concept '{names[i]}' does not exist");
            }
        }

        var edgeIds = new SortedSet<int>();
        foreach (int id in conceptIds)
        {
            foreach (int edge in _edges.EdgesOf(id))
            {
                edgeIds.Add(edge);
            }
        }

        var batch = new List<Mutation>(edgeIds.Count + conceptIds.Count);
        batch.AddRange(edgeIds.Select(edge => new Mutation.DeleteEdge(edge)));
        batch.AddRange(conceptIds.Select(id => new Mutation.DeleteConcept(id)));
        int deleted = conceptIds.Count;
        return new Planned<WriteSummary>(batch, _ => new WriteSummary(deleted, names.Count - deleted));
    }

    private Result<Planned<RelationInfo>> PlanRelation(RelationSpec spec)
    {
        EngineError? error = Validation.Name(spec.Name, "name")
            ?? Validation.Vector(spec.Vector, Dimension, "vector")
            ?? (spec.InverseOf is { Length: > 0 } inverseName ? Validation.Name(inverseName, "inverse_of") : null);
        if (error is not null)
        {
            return error;
        }

        // A repeated rule is kept once, so only distinct rules count against the limit.
        int distinctRules = spec.Compositions?.Where(rule => rule is not null).Select(rule => (rule.First, rule.Second)).Distinct().Count() ?? 0;
        if (distinctRules > MaxCompositions)
        {
            return EngineError.Invalid("compositions", $"has {distinctRules} distinct rules; a relation may have at most {MaxCompositions}");
        }

        var compositions = new List<(int, int)>();
        for (int i = 0; i < (spec.Compositions?.Count ?? 0); i++)
        {
            Composition rule = spec.Compositions![i];
            if (rule is null)
            {
                return EngineError.Invalid($"compositions[{i}]", "must not be null");
            }

            if ((Validation.Name(rule.First, $"compositions[{i}].first") ?? Validation.Name(rule.Second, $"compositions[{i}].second")) is { } badName)
            {
                return badName;
            }

            int first = RuleRelation(rule.First, spec.Name);
            int second = RuleRelation(rule.Second, spec.Name);
            if (first == UnknownRelation || second == UnknownRelation)
            {
                string field = first == UnknownRelation ? "first" : "second";
                return EngineError.NotFound($"compositions[{i}].{field}", $"relation '{(first == UnknownRelation ? rule.First : rule.Second)}' does not exist; define it first");
            }

            compositions.Add((first, second));
        }

        var planned = new Dictionary<int, RelationRecord>();
        int nextId = _relations.Count;
        RelationRecord Current(int id) => planned.GetValueOrDefault(id) ?? _relations[id];

        bool exists = _relations.TryGetId(spec.Name, out int selfId);
        RelationRecord self = exists ? _relations[selfId] : new RelationRecord(selfId = nextId++, spec.Name, null, false, false, -1, []);
        self = self with
        {
            Vector = (float[]?)spec.Vector?.Clone() ?? self.Vector,
            Symmetric = spec.Symmetric ?? self.Symmetric,
            Transitive = spec.Transitive ?? self.Transitive,
            Compositions = spec.Compositions is null ? self.Compositions : compositions.Select(rule => ResolveSelf(rule, selfId)).Distinct().ToArray(),
        };
        if (spec.Vector is not null)
        {
            // A given vector is a translation (c + r), not a trained one: a relation trained by
            // RotatE kept its rotation operator, and every c ± r query on it then wanted d/2 phases.
            self = self with { Operator = RelationOperator.Translation, Trained = false, TrainedNorm = DistanceNorm.L1 };
        }

        planned[selfId] = self;

        if (spec.InverseOf is not null)
        {
            int partner = -1;
            if (spec.InverseOf.Length > 0)
            {
                if (spec.InverseOf == spec.Name)
                {
                    if (!self.Symmetric)
                    {
                        return EngineError.Invalid("inverse_of", $"'{spec.Name}' can be its own inverse only if it is symmetric; declare symmetric = true");
                    }

                    partner = selfId;
                }
                else if (!_relations.TryGetId(spec.InverseOf, out partner))
                {
                    partner = nextId++;
                    planned[partner] = new RelationRecord(partner, spec.InverseOf, null, false, false, -1, []);
                }
            }

            // Release the previous partners on both sides, then pair the two.
            if (self.InverseId >= 0 && self.InverseId != partner && self.InverseId != selfId)
            {
                planned[self.InverseId] = Current(self.InverseId) with { InverseId = -1 };
            }

            if (partner >= 0 && partner != selfId)
            {
                RelationRecord other = Current(partner);
                if (other.InverseId >= 0 && other.InverseId != selfId && other.InverseId != partner)
                {
                    planned[other.InverseId] = Current(other.InverseId) with { InverseId = -1 };
                }

                planned[partner] = other with { InverseId = selfId };
            }

            planned[selfId] = Current(selfId) with { InverseId = partner };
        }
        else if (self.Symmetric is false && self.InverseId == selfId)
        {
            return EngineError.Invalid("symmetric", $"'{spec.Name}' is its own inverse, so it must stay symmetric (clear inverse_of first)");
        }

        // New relations must be logged in id order: replay appends them.
        var batch = planned.OrderBy(pair => pair.Key).Select(pair => (Mutation)new Mutation.PutRelation(pair.Value)).ToList();
        return new Planned<RelationInfo>(batch, collection => collection.GetRelation(spec.Name).Value);
    }

    private const int UnknownRelation = -2;
    private const int SelfRelation = -3;

    /// <summary>A rule may name the relation being defined (e.g. <c>ancestor ∘ ancestor ⇒ ancestor</c>).</summary>
    private int RuleRelation(string? name, string self) =>
        name == self ? SelfRelation : name is not null && _relations.TryGetId(name, out int id) ? id : UnknownRelation;

    private static (int, int) ResolveSelf((int First, int Second) rule, int selfId) =>
        (rule.First == SelfRelation ? selfId : rule.First, rule.Second == SelfRelation ? selfId : rule.Second);

    private Result<Planned<WriteSummary>> PlanFactAdds(IReadOnlyList<FactInput> facts)
    {
        var reader = new FactReader(facts);
        if (FirstError(facts.Count, i => ValidateFact(reader, i)) is { } error)
        {
            return error;
        }

        var planner = new BatchPlanner(this);
        WriteSummary summary = planner.AddFacts(facts);
        return new Planned<WriteSummary>(planner.Complete(), _ => summary);
    }

    private Result<Planned<WriteSummary>> PlanFactRemovals(IReadOnlyList<FactKey> facts)
    {
        var edgeIds = new SortedSet<int>();
        for (int i = 0; i < facts.Count; i++)
        {
            FactKey fact = facts[i];
            if (fact is null)
            {
                return EngineError.Invalid($"facts[{i}]", "must not be null");
            }

            EngineError? error = Validation.Name(fact.Head, "head") ?? Validation.Name(fact.Relation, "relation") ?? Validation.Name(fact.Tail, "tail");
            if (error is not null)
            {
                return error.At($"facts[{i}]");
            }

            if (_concepts.TryGetId(fact.Head, out int head)
                && _relations.TryGetId(fact.Relation, out int relation)
                && _concepts.TryGetId(fact.Tail, out int tail)
                && _edges.TryFind(head, relation, tail, out int edge))
            {
                edgeIds.Add(edge);
            }
        }

        var batch = edgeIds.Select(edge => (Mutation)new Mutation.DeleteEdge(edge)).ToList();
        int removed = edgeIds.Count;
        return new Planned<WriteSummary>(batch, _ => new WriteSummary(removed, facts.Count - removed));
    }
}
