using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>The most relations one search query may add and subtract: far more than a
    /// question needs, and few enough that building a query stays cheap (each term is a vector the
    /// length of a row, built under the read lock).</summary>
    public const int MaxRelationTerms = 64;

    /// <summary>Per relation, its recall memory (its facts' row indexes, on the device), built at its
    /// first recall and kept until a write changes the relation or its facts (see
    /// <see cref="ForgetRecallMemory"/>).</summary>
    private readonly Dictionary<int, RecallMemory> _recallMemories = [];
    private readonly Lock _recallCache = new();

    /// <summary>How many recall memories were built: each build scans every edge, so tests check
    /// that writes to other relations do not cause one.</summary>
    internal int RecallMemoriesBuilt { get; private set; }

    /// <summary>The most queries searched under one hold of the read lock (see <see cref="Search"/>):
    /// enough for the batch kernels to run at full speed, few enough that a write waits for one
    /// slice (about 1.5 s on a million rows of 128 floats, on two cores), not for the whole call.</summary>
    public const int QueriesPerSlice = 256;

    /// <summary>
    /// Nearest concepts for a batch of queries, run as one kernel call per
    /// <see cref="QueriesPerSlice"/> queries. A query is a raw vector or a concept plus and minus
    /// relation vectors (<c>c + r</c>: what is r of c; <c>c − r</c>: whose r is c). Scores follow
    /// the collection's metric; ties are broken by concept id. Each slice sees the collection as it
    /// is when the slice starts (writes may land between slices), and cancellation is checked
    /// before each (<see cref="OperationCanceledException"/>).
    /// </summary>
    public Result<IReadOnlyList<IReadOnlyList<SearchHit>>> Search(IReadOnlyList<SearchQuery> queries, SearchOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(options);
        EngineError? error = (queries.Count == 0 ? EngineError.Invalid("queries", "must hold at least one query") : null)
            ?? (options.K is < 1 or > VectorSearch.MaxK ? EngineError.Invalid("k", $"is {options.K}; it must be 1..{VectorSearch.MaxK}") : null)
            ?? Validation.Map(options.MetadataFilter, "metadata_filter");
        for (int i = 0; error is null && i < queries.Count; i++)
        {
            error = ValidateQuery(queries[i])?.At($"queries[{i}]");
        }

        if (error is not null)
        {
            return error;
        }

        var answers = new List<IReadOnlyList<SearchHit>>(queries.Count);
        for (int start = 0; start < queries.Count; start += QueriesPerSlice)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int end = Math.Min(queries.Count, start + QueriesPerSlice);
            Result<IEnumerable<IReadOnlyList<SearchHit>>> slice = Read(() => SearchSlice(queries, start, end, options));
            if (!slice.IsOk)
            {
                return slice.Error!;
            }

            answers.AddRange(slice.Value);
        }

        return answers;
    }

    /// <summary>Searches queries <paramref name="start"/> to <paramref name="end"/> (exclusive) as one kernel call; under the read lock.</summary>
    private Result<IEnumerable<IReadOnlyList<SearchHit>>> SearchSlice(IReadOnlyList<SearchQuery> queries, int start, int end, SearchOptions options)
    {
        var flat = new float[(end - start) * Dimension];
        var excluded = new List<IReadOnlyCollection<int>>(end - start);
        for (int i = start; i < end; i++)
        {
            Result<(float[] Vector, int Concept)> built = BuildQuery(queries[i]);
            if (!built.IsOk)
            {
                return built.Error!.At($"queries[{i}]");
            }

            built.Value.Vector.CopyTo(flat, (i - start) * Dimension);
            excluded.Add(options.ExcludeQueryConcepts && built.Value.Concept >= 0 ? [built.Value.Concept] : []);
        }

        Result<SearchHits[]> hits = _search.Search(_matrix, flat, options.K, new SearchFilter(excluded, MetadataFilter(options.MetadataFilter)));
        if (!hits.IsOk)
        {
            return hits.Error!;
        }

        return hits.Value.Select(ToHits).ToList();
    }

    /// <summary>
    /// What relates a to b: every relation r with <c>a r b</c> stored or derived (with its proof),
    /// and the vector reading — the relations whose vectors are nearest (by cosine) to
    /// <c>v(b) − v(a)</c>, since the direction of the difference is the relation (a rotation relation,
    /// from RotatE, by the cosine of <c>v(a)</c> rotated by r with <c>v(b)</c>). Relations without a
    /// given or trained vector are read by their closed-form estimate. It runs one proof search per
    /// relation, all within one <see cref="Reasoner.MaxWork"/> bound (the relations of the edges
    /// between a and b first; those not yet checked when it is spent are left out, except that a
    /// stored a r b is always listed), and its proofs
    /// hold at most <see cref="MaxProofFacts"/> facts (the relations after are left out, marked
    /// truncated, as for related queries); cancellation is checked throughout
    /// (<see cref="OperationCanceledException"/>).
    /// </summary>
    public Result<RelateResult> Relate(string a, string b, int k = 5, RelatedOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= RelatedOptions.Default;
        EngineError? error = Validation.Name(a, "a") ?? Validation.Name(b, "b")
            ?? (k is < 0 or > MaxAnswers ? EngineError.Invalid("k", $"is {k}; it must be 0..{MaxAnswers}") : null)
            ?? (options.MaxDepth is < 0 or > MaxRelatedDepth ? EngineError.Invalid("max_depth", $"is {options.MaxDepth}; it must be 0..{MaxRelatedDepth}") : null);
        if (error is not null)
        {
            return error;
        }

        return Read<RelateResult>(() =>
        {
            if (!_concepts.TryGetId(a, out int from))
            {
                return ConceptNotFound("a", a);
            }

            if (!_concepts.TryGetId(b, out int to))
            {
                return ConceptNotFound("b", b);
            }

            // The relations that hold by the edges between a and b are searched first (r for a
            // stored a r b; for b r a, r's inverse, and r, which may be symmetric): with many
            // relations the shared work bound can run out. A stored a r b is answered from this scan
            // even then: a concept of a million edges spends the bound reading its own edges.
            var between = new HashSet<int>();
            var storedBetween = new Dictionary<int, int>();
            foreach (int edge in _edges.EdgesOf(from))
            {
                int relation = _edges.Relation(edge);
                if (_edges.Head(edge) == from && _edges.Tail(edge) == to)
                {
                    between.Add(relation);
                    storedBetween.TryAdd(relation, edge);
                }

                // b r a (for a self-loop, a r a read from its other end).
                if (_edges.Head(edge) == to && _edges.Tail(edge) == from)
                {
                    between.Add(relation);
                    if (_relations.Inverse(relation) is >= 0 and int inverse)
                    {
                        between.Add(inverse);
                    }
                }
            }

            RelationRecord[] asked = [.. _relations.All.OrderBy(relation => between.Contains(relation.Id) ? 0 : 1)];
            var reasoner = new Reasoner(_relations, _edges, options.IncludeLearned, cancellationToken);
            Dictionary<int, Derivation>[] answers = reasoner.Related(from, [.. asked.Select(relation => relation.Id)], options.MaxDepth);
            var found = new List<(string Relation, Derivation Derivation)>();
            for (int i = 0; i < asked.Length; i++)
            {
                if (answers[i].TryGetValue(to, out Derivation? derivation))
                {
                    found.Add((asked[i].Name, derivation));
                }
                else if (storedBetween.TryGetValue(asked[i].Id, out int edge))
                {
                    found.Add((asked[i].Name, Derivation.Stored(edge)));
                }
            }

            // As for related queries, the proofs built under the read lock hold at most MaxProofFacts
            // facts (tens of thousands of relations, each proven by a long chain, held gigabytes).
            var graph = new List<RelatedRelation>();
            long proofFacts = 0;
            foreach ((string relation, Derivation derivation) in found
                .OrderBy(pair => pair.Derivation.Kind).ThenBy(pair => pair.Derivation.Rules.Length).ThenBy(pair => pair.Relation, StringComparer.Ordinal))
            {
                proofFacts += derivation.StoredEdges.Length;
                if (proofFacts > MaxProofFacts && graph.Count > 0)
                {
                    break;
                }

                graph.Add(new RelatedRelation(relation, derivation.Kind, ToProof(derivation), derivation.Confidence));
            }

            float[] target = _matrix.GetRow(to);
            float[] start = _matrix.GetRow(from);
            float[] difference = [.. target.Zip(start, (t, s) => t - s)];
            float? Reading(RelationRecord relation) => EffectiveVector(relation).Vector is not { } vector ? null
                : relation.Operator != RelationOperator.Rotation ? (vector.Length == Dimension ? Cosine(difference, vector) : null)
                : VectorQuery.FromVector(start).Plus(vector, rotation: true).Build(_matrix) is { IsOk: true } rotated ? Cosine(rotated.Value, target)
                : null;

            var reading = _relations.All
                .Select(relation => (relation.Name, Score: Reading(relation)))
                .Where(pair => pair.Score is not null)
                .Select(pair => new RelationScore(pair.Name, pair.Score!.Value))
                .OrderByDescending(score => score.Score)
                .ThenBy(score => score.Relation, StringComparer.Ordinal)
                .Take(k)
                .ToList();
            return new RelateResult(graph, reading, reasoner.Truncated || graph.Count < found.Count);
        });
    }

    /// <summary>
    /// Reads a relation's facts (and its declared inverse's, read the other way) as a bidirectional
    /// key–value memory: forward
    /// <c>y = Vᵀ softmax(β K x)</c> with heads as keys and tails as values, reverse
    /// <c>y′ = Kᵀ softmax(β V x)</c>, or auto (see <see cref="RecallMemory"/> for the gate). K and V
    /// are gathered from the concept matrix by index; nothing is copied into storage. Cancellation
    /// is checked while the relation's facts are gathered and before the search
    /// (<see cref="OperationCanceledException"/>).
    /// </summary>
    public Result<RecallResult> Recall(RecallQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        EngineError? error = Validation.Name(query.Relation, "relation")
            ?? ((query.Vector is null) == (query.Concept is null) ? EngineError.Invalid("vector", "set exactly one of vector and concept") : null)
            ?? Validation.Vector(query.Vector, Dimension, "vector")
            ?? (query.Concept is null ? null : Validation.Name(query.Concept, "concept"))
            ?? (Enum.IsDefined(query.Direction) ? null : EngineError.Invalid("direction", $"{(int)query.Direction} is not forward, reverse or auto"));
        if (error is not null)
        {
            return error;
        }

        return Read<RecallResult>(() =>
        {
            if (!_relations.TryGetId(query.Relation, out int relation))
            {
                return RelationNotFound("relation", query.Relation);
            }

            int concept = -1;
            if (query.Concept is not null && !_concepts.TryGetId(query.Concept, out concept))
            {
                return ConceptNotFound("concept", query.Concept);
            }

            float[] x = query.Vector ?? _matrix.GetRow(concept);
            SearchFilter filter = concept >= 0 ? new SearchFilter([[concept]]) : SearchFilter.None;
            RecallMemory memory = RecallMemoryOf(relation, cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            Result<RecallOutcome> outcome = memory.Recall(x, query.Direction, query.Beta, query.K, _search, filter);
            if (!outcome.IsOk)
            {
                return outcome.Error!;
            }

            return new RecallResult(outcome.Value.Vector, ToHits(outcome.Value.Nearest), outcome.Value.ForwardWeight);
        });
    }

    /// <summary>The relation's memory, built when no write has changed the relation since the last.
    /// Called under the read lock, which several readers hold at once, hence its own lock.</summary>
    private RecallMemory RecallMemoryOf(int relation, CancellationToken cancellationToken)
    {
        lock (_recallCache)
        {
            if (_recallMemories.TryGetValue(relation, out RecallMemory? cached))
            {
                return cached;
            }

            // A fact of the declared inverse is one of the relation read the other way (x child_of
            // m is m mother_of x), as everywhere else a fact is answered from either end; recalling
            // child_of over facts stored as mother_of found none. A pair stored both ways (a r b and
            // b r′ a, as mining finds inverses) is one fact, and weighs as one in the softmax; so do
            // a r b and b r a for a symmetric relation, whose memory reads every fact both ways.
            int inverse = _relations.Inverse(relation);
            // The inverse of a symmetric relation holds the same pairs, so it is symmetric too.
            bool symmetric = _relations[relation].Symmetric || (inverse >= 0 && _relations[inverse].Symmetric);
            (int, int) Pair(int head, int tail) => symmetric && tail < head ? (tail, head) : (head, tail);
            var heads = new List<int>();
            var tails = new List<int>();
            var pairs = new HashSet<(int, int)>();
            var inversePairs = new List<(int Head, int Tail)>();
            for (int edge = 0; edge < _edges.IdLimit; edge++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!_edges.IsLive(edge))
                {
                    continue;
                }

                int edgeRelation = _edges.Relation(edge);
                if (edgeRelation == relation)
                {
                    if ((symmetric || inverse >= 0) && !pairs.Add(Pair(_edges.Head(edge), _edges.Tail(edge))))
                    {
                        continue; // b r a beside a r b, under a symmetric r
                    }

                    heads.Add(_edges.Head(edge));
                    tails.Add(_edges.Tail(edge));
                }
                else if (edgeRelation == inverse)
                {
                    inversePairs.Add((_edges.Tail(edge), _edges.Head(edge)));
                }
            }

            foreach ((int head, int tail) in inversePairs)
            {
                if (pairs.Add(Pair(head, tail)))
                {
                    heads.Add(head);
                    tails.Add(tail);
                }
            }

            var memory = new RecallMemory(_matrix, heads.ToArray(), tails.ToArray(), symmetric);
            _recallMemories[relation] = memory;
            RecallMemoriesBuilt++;
            return memory;
        }
    }

    /// <summary>Drops the memories a write to a relation's facts or properties changes: its own and
    /// its declared inverse's, which holds its facts read the other way. Under the state lock's
    /// write side, so no recall is using them. A concept's new vector needs none: recalls gather
    /// the rows from W.</summary>
    private void ForgetRecallMemory(int relation)
    {
        if (_recallMemories.Count == 0)
        {
            return;
        }

        foreach (int changed in new[] { relation, _relations.Inverse(relation) })
        {
            if (changed >= 0 && _recallMemories.Remove(changed, out RecallMemory? memory))
            {
                memory.Dispose();
            }
        }
    }

    private EngineError? ValidateQuery(SearchQuery? query)
    {
        if (query is null)
        {
            return EngineError.Invalid("", "must not be null");
        }

        if ((query.Vector is null) == (query.Concept is null))
        {
            return EngineError.Invalid("vector", "set exactly one of vector and concept");
        }

        EngineError? error = Validation.Vector(query.Vector, Dimension, "vector") ?? (query.Concept is null ? null : Validation.Name(query.Concept, "concept"));
        for (int i = 0; error is null && i < (query.Plus?.Count ?? 0); i++)
        {
            error = Validation.Name(query.Plus![i], $"plus[{i}]");
        }

        for (int i = 0; error is null && i < (query.Minus?.Count ?? 0); i++)
        {
            error = Validation.Name(query.Minus![i], $"minus[{i}]");
        }

        return error;
    }

    /// <summary>The query vector and the concept it starts from (−1 for a raw vector). Needs the read lock.</summary>
    private Result<(float[] Vector, int Concept)> BuildQuery(SearchQuery query)
    {
        int plusCount = query.Plus?.Count ?? 0, terms = plusCount + (query.Minus?.Count ?? 0);
        if (terms > MaxRelationTerms)
        {
            return EngineError.Invalid(plusCount > MaxRelationTerms ? "plus" : "minus", $"the query adds and subtracts {terms} relations; at most {MaxRelationTerms} in all");
        }

        int concept = -1;
        if (query.Concept is not null && !_concepts.TryGetId(query.Concept, out concept))
        {
            return ConceptNotFound("concept", query.Concept);
        }

        VectorQuery vectorQuery = concept >= 0 ? VectorQuery.FromConcept(concept) : VectorQuery.FromVector(query.Vector);
        foreach ((IReadOnlyList<string>? names, string field, bool plus) in new[] { (query.Plus, "plus", true), (query.Minus, "minus", false) })
        {
            for (int i = 0; i < (names?.Count ?? 0); i++)
            {
                if (!_relations.TryGetId(names![i], out int relation))
                {
                    return RelationNotFound($"{field}[{i}]", names[i]);
                }

                RelationRecord record = _relations[relation];
                if (EffectiveVector(record).Vector is not { } vector)
                {
                    return new EngineError(ErrorCode.FailedPrecondition, $"{field}[{i}]", $"relation '{names[i]}' has no vector yet; give it one, add facts between concepts with vectors, or train");
                }

                bool rotation = record.Operator == RelationOperator.Rotation;
                vectorQuery = plus ? vectorQuery.Plus(vector, rotation) : vectorQuery.Minus(vector, rotation);
            }
        }

        Result<float[]> built = vectorQuery.Build(_matrix);
        if (!built.IsOk)
        {
            return built.Error!;
        }

        // Each stored or given vector is within the norm bound, but a sum of them need not be, nor a
        // closed-form relation vector estimated from rows stored before the bound existed. The
        // error names the parts, since the caller sent none of these vectors.
        double squaredNorm = terms > 0 ? built.Value.Sum(x => (double)x * x) : 0;
        return squaredNorm <= Validation.MaxSquaredNorm
            ? (built.Value, concept)
            : EngineError.Invalid(plusCount > 0 ? "plus" : "minus",
                $"the query's {(concept >= 0 ? "concept" : "vector")} with these relations' vectors sums to a squared norm of {squaredNorm:G3}, beyond {Validation.MaxSquaredNorm:G3} "
                + "(a fifth of float32's range, so that scores stay finite); give the concept or the relations smaller vectors");
    }

    /// <summary>The vector a relation answers <c>c ± r</c> with: given or trained when it has one,
    /// else the closed-form estimate from its facts. Needs the read lock.</summary>
    private (float[]? Vector, RelationVectorSource Source) EffectiveVector(RelationRecord relation)
    {
        if (relation.Vector is { } vector)
        {
            return (vector, relation.Trained ? RelationVectorSource.Trained : RelationVectorSource.Given);
        }

        var estimate = new float[Dimension];
        return _closedForm.TryGetVector(relation.Id, estimate) ? (estimate, RelationVectorSource.ClosedForm) : (null, RelationVectorSource.None);
    }

    private RowFilter? MetadataFilter(IReadOnlyDictionary<string, string>? required)
    {
        if (required is not { Count: > 0 })
        {
            return null;
        }

        return RowFilter.FromPredicate(_matrix.RowLimit, row =>
            _concepts.IsLive(row) && required.All(pair => _concepts.Metadata(row).TryGetValue(pair.Key, out string? value) && value == pair.Value));
    }

    private IReadOnlyList<SearchHit> ToHits(SearchHits hits)
    {
        var result = new SearchHit[hits.Count];
        for (int i = 0; i < hits.Count; i++)
        {
            // + 0 turns −0 (l2's score of an exact match, −‖w − q‖² = −0) into 0, as users read it.
            result[i] = new SearchHit(hits.Rows[i], _concepts.Name(hits.Rows[i]), hits.Scores[i] + 0f);
        }

        return result;
    }

    private static float Cosine(float[] a, float[] b)
    {
        double dot = 0, normA = 0, normB = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            normA += (double)a[i] * a[i];
            normB += (double)b[i] * b[i];
        }

        return normA == 0 || normB == 0 ? 0f : (float)(dot / Math.Sqrt(normA * normB));
    }
}
