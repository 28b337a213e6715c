using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>The deepest a <c>related</c> proof may nest rules.</summary>
    public const int MaxRelatedDepth = 16;

    /// <summary>The most answers one <c>related</c> or <c>neighbors</c> call may return.</summary>
    public const int MaxAnswers = 100_000;

    /// <summary>
    /// The most stored facts the proofs of one <c>related</c> call's answers hold in all; the
    /// answers after the one that passes it are left out, and the answers marked truncated (the
    /// first is kept whatever its proof). A proof through compositions can hold 2^depth facts, so a
    /// thousand answers could hold tens of millions, built under the read lock to be cut down to
    /// the server's message size (16 MiB by default, tens of bytes a fact) afterwards.
    /// </summary>
    public const int MaxProofFacts = 1 << 20;

    /// <summary>A concept with its vector (bit-exact as stored), metadata and degree.</summary>
    public Result<ConceptInfo> GetConcept(string name) => Read<ConceptInfo>(() =>
    {
        if (Validation.Name(name, "name") is { } error)
        {
            return error;
        }

        if (!_concepts.TryGetId(name, out int id))
        {
            return ConceptNotFound("name", name);
        }

        return new ConceptInfo(id, name, _matrix.GetRow(id), _concepts.Metadata(id), _edges.Degree(id));
    });

    /// <summary>A relation with its properties.</summary>
    public Result<RelationInfo> GetRelation(string name) => Read<RelationInfo>(() =>
    {
        if (Validation.Name(name, "name") is { } error)
        {
            return error;
        }

        return _relations.TryGetId(name, out int id) ? ToInfo(_relations[id]) : (Result<RelationInfo>)RelationNotFound("name", name);
    });

    /// <summary>Relations in creation (id) order: those after id <paramref name="after"/>, at most
    /// <paramref name="count"/>; every relation by default. Only the page is built (each relation's
    /// vector is copied), so reading a list page by page costs what its pages hold.</summary>
    public Result<IReadOnlyList<RelationInfo>> ListRelations(int after = -1, int count = int.MaxValue) => Read<IReadOnlyList<RelationInfo>>(() =>
    {
        int first = (int)Math.Clamp(after + 1L, 0, _relations.Count);
        int end = (int)Math.Min(first + (long)Math.Max(count, 0), _relations.Count);
        return Enumerable.Range(first, end - first).Select(id => ToInfo(_relations[id])).ToList();
    }, whileStopped: true);

    /// <summary>
    /// Every x with <c>concept relation x</c>: stored edges read from either end, and answers derived
    /// by inverse, symmetric, transitive and composition properties, each with its proof. Stored
    /// answers come first, then derived ones by proof length, then by name. The proof search goes
    /// depth by depth and stops at <see cref="Reasoner.MaxWork"/> units of work, returning every
    /// answer of the depths it completed and those found at the next, marked
    /// <see cref="RelatedAnswers.Truncated"/> (as when the limit cuts the list). Cancellation is
    /// checked at every step of it (<see cref="OperationCanceledException"/>).
    /// </summary>
    public Result<RelatedAnswers> Related(string concept, string relation, RelatedOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= RelatedOptions.Default;
        EngineError? error = Validation.Name(concept, "concept")
            ?? Validation.Name(relation, "relation")
            ?? (options.MaxDepth is < 0 or > MaxRelatedDepth ? EngineError.Invalid("max_depth", $"is {options.MaxDepth}; it must be 0..{MaxRelatedDepth}") : null)
            ?? (options.Limit is < 1 or > MaxAnswers ? EngineError.Invalid("limit", $"is {options.Limit}; it must be 1..{MaxAnswers}") : null);
        if (error is not null)
        {
            return error;
        }

        return Read<RelatedAnswers>(() =>
        {
            if (!_concepts.TryGetId(concept, out int conceptId))
            {
                return ConceptNotFound("concept", concept);
            }

            if (!_relations.TryGetId(relation, out int relationId))
            {
                return RelationNotFound("relation", relation);
            }

            var reasoner = new Reasoner(_relations, _edges, options.IncludeLearned, cancellationToken);
            var found = reasoner.Related(conceptId, relationId, options.MaxDepth);
            var answers = new List<Answer>();
            long proofFacts = 0;
            foreach ((int id, Derivation proof) in found
                .OrderBy(pair => pair.Value.Kind)
                .ThenBy(pair => pair.Value.Steps)
                .ThenBy(pair => _concepts.Name(pair.Key), StringComparer.Ordinal)
                .Take(options.Limit))
            {
                proofFacts += proof.StoredEdges.Length;
                if (proofFacts > MaxProofFacts && answers.Count > 0)
                {
                    break;
                }

                answers.Add(new Answer(_concepts.Name(id), proof.Kind, ToProof(proof), proof.Confidence));
            }

            return new RelatedAnswers(answers, reasoner.Truncated || found.Count > answers.Count);
        });
    }

    /// <summary>
    /// The stored edges touching a concept, both directions, optionally of one relation, in edge id
    /// order, <paramref name="limit"/> at a time: a page holds the edges after the edge id
    /// <paramref name="after"/> (−1: from the first), and says where the next one starts
    /// (<see cref="EdgePage.Next"/>). Edge ids follow the order facts were stored in, except that
    /// a removed fact's id is reused by a later one. So the facts stored for the whole paging are
    /// read exactly once; one stored meanwhile may be missed, and one removed and stored again
    /// meanwhile may be missed or read twice.
    /// </summary>
    public Result<EdgePage> Neighbors(string concept, string? relation = null, int limit = 1000, int after = -1)
    {
        EngineError? error = Validation.Name(concept, "concept")
            ?? (relation is null ? null : Validation.Name(relation, "relation"))
            ?? (limit is < 1 or > MaxAnswers ? EngineError.Invalid("limit", $"is {limit}; it must be 1..{MaxAnswers}") : null)
            ?? (after < -1 ? EngineError.Invalid("after", $"is {after}; it must be an edge id, or -1 for the first page") : null);
        if (error is not null)
        {
            return error;
        }

        return Read<EdgePage>(() =>
        {
            if (!_concepts.TryGetId(concept, out int conceptId))
            {
                return ConceptNotFound("concept", concept);
            }

            int relationFilter = -1;
            if (relation is not null && !_relations.TryGetId(relation, out relationFilter))
            {
                return RelationNotFound("relation", relation);
            }

            // The limit + 1 lowest ids past the cursor (one more tells whether a page follows), in a
            // heap whose root is the highest kept: sorting every edge past the cursor on each page
            // made reading a hub of d edges cost d²/limit.
            var lowest = new PriorityQueue<int, int>(limit + 1);
            foreach (int edge in _edges.EdgesOf(conceptId))
            {
                if (edge > after && (relationFilter < 0 || _edges.Relation(edge) == relationFilter))
                {
                    if (lowest.Count <= limit)
                    {
                        lowest.Enqueue(edge, -edge);
                    }
                    else if (edge < lowest.Peek())
                    {
                        lowest.EnqueueDequeue(edge, -edge);
                    }
                }
            }

            bool more = lowest.Count > limit;
            int[] selected = [.. lowest.UnorderedItems.Select(item => item.Element).Order().Take(limit)];
            var views = new List<EdgeView>(selected.Length);
            foreach (int edge in selected)
            {
                bool outgoing = _edges.Head(edge) == conceptId;
                views.Add(new EdgeView(
                    FactOf(edge),
                    outgoing ? EdgeDirection.Outgoing : EdgeDirection.Incoming,
                    _concepts.Name(outgoing ? _edges.Tail(edge) : _edges.Head(edge)),
                    _edges.Weight(edge),
                    _edges.Payload(edge)));
            }

            return new EdgePage(views, selected, more);
        });
    }

    /// <summary>Reads under the read lock, unless the collection cannot serve (dropped, or stopped by
    /// a failed write): a caller that looked the collection up before a drop closed it must not read
    /// its released matrix, nor answer from its facts. Every read goes through here, so a read that
    /// holds the lock finishes before a drop closes the collection, and one after it is NotFound.
    /// With <paramref name="whileStopped"/>, a collection stopped by a failed write is read too (its
    /// description and listings, which show what it holds).</summary>
    private Result<T> Read<T>(Func<Result<T>> read, bool whileStopped = false)
    {
        _state.EnterReadLock();
        try
        {
            return (whileStopped ? Dropped() : Unavailable()) is { } refused ? refused : read();
        }
        finally
        {
            _state.ExitReadLock();
        }
    }

    private FactKey FactOf(int edge) =>
        new(_concepts.Name(_edges.Head(edge)), _relations[_edges.Relation(edge)].Name, _concepts.Name(_edges.Tail(edge)));

    private Proof ToProof(Derivation derivation) => new(derivation.StoredEdges.Select(FactOf).ToList(), derivation.Rules);

    private RelationInfo ToInfo(RelationRecord relation)
    {
        (float[]? vector, RelationVectorSource source) = EffectiveVector(relation);
        return new RelationInfo(
            relation.Id,
            relation.Name,
            (float[]?)vector?.Clone(),
            relation.Symmetric,
            relation.Transitive,
            relation.InverseId >= 0 ? _relations[relation.InverseId].Name : null,
            relation.Compositions.Select(rule => new Composition(_relations[rule.First].Name, _relations[rule.Second].Name)).ToList(),
            _relations.FactCount(relation.Id))
        {
            VectorSource = source,
            Operator = relation.Operator,
            Learned = (relation.Learned ?? []).Select(rule => ToProperty(relation, rule)).ToList(),
        };
    }

    private LearnedProperty ToProperty(RelationRecord relation, LearnedRule rule) => new(
        rule.Kind,
        relation.Name,
        rule.Other >= 0 ? _relations[rule.Other].Name : null,
        rule.First >= 0 ? _relations[rule.First].Name : null,
        rule.Second >= 0 ? _relations[rule.Second].Name : null,
        rule.Statistics);

    private static EngineError ConceptNotFound(string field, string name) =>
        EngineError.NotFound(field, $"concept '{name}' does not exist");

    private static EngineError RelationNotFound(string field, string name) =>
        EngineError.NotFound(field, $"relation '{name}' does not exist");
}
