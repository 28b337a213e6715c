using System.Runtime.InteropServices;
using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>A fact's names as ids in the stored state (−1: not stored yet) and the stored edge it
    /// repeats (−1: none).</summary>
    private readonly record struct StoredLookup(int Head, int Relation, int Tail, int Edge);

    private readonly PlanningBuffers _planning = new();

    /// <summary>
    /// What planning a write fills and then drops, kept from one write to the next (only the writer
    /// plans). Allocated per write, these were several hundred kilobytes per 10,000 facts on the
    /// large-object heap, whose churn set off full collections during a bulk load. They keep the
    /// capacity of the largest write so far, as the log's entry buffer does.
    /// </summary>
    private sealed class PlanningBuffers
    {
        private readonly List<Mutation.PutEdge> _edgePuts = [];
        private StoredLookup[] _lookups = [];
        private int _edgePutsTaken;

        public Dictionary<string, ConceptRecord> Concepts { get; } = new(StringComparer.Ordinal);

        public Dictionary<(int, int, int), EdgeRecord?> Edges { get; } = [];

        private readonly List<Mutation> _mutations = [];

        public List<(string Name, float[] Vector)> UnfilledNameVectors { get; } = [];

        /// <summary>
        /// A put of <paramref name="edge"/>, reusing one of an earlier write: a bulk load plans one
        /// per fact, and each lived through its write's durable append, long enough to be copied by
        /// collections to an older generation, most of the garbage that planning left. Nothing
        /// refers to a put once its write is done (<see cref="WriteAsync"/> clears the batch, and the
        /// state store's writes read the log entry), so the next write's planning may reuse it.
        /// </summary>
        public Mutation.PutEdge PutEdge(EdgeRecord edge)
        {
            if (_edgePutsTaken == _edgePuts.Count)
            {
                AddEdgePuts(Math.Max(MinEdgePutsAdded, _edgePuts.Count));
            }

            Mutation.PutEdge put = _edgePuts[_edgePutsTaken++];
            put.Edge = edge;
            return put;
        }

        private const int MinEdgePutsAdded = 256;

        /// <summary>
        /// Adds <paramref name="count"/> puts, allocated one after another so that they lie side by
        /// side in memory (and stay so: the collector keeps survivors' order), as a batch reads them
        /// in order. Made one at a time among the concepts, names and vectors a batch plans, they lay
        /// scattered over megabytes, and reading the next put's type missed the cache at every fact
        /// in each pass over a batch (planning, encoding and applying): in a profile of a 10 M-fact
        /// load, applying's type check alone took 2.4 % of all samples, and 0.4 % side by side.
        /// </summary>
        private void AddEdgePuts(int count)
        {
            _edgePuts.EnsureCapacity(_edgePuts.Count + count);
            for (int i = 0; i < count; i++)
            {
                _edgePuts.Add(new Mutation.PutEdge(default));
            }
        }

        /// <summary>The batch of a write about to be planned, empty; the puts handed out for earlier
        /// writes may be reused. <see cref="WriteAsync"/> clears it once the batch is written.</summary>
        public List<Mutation> NewBatch()
        {
            _mutations.Clear();
            _edgePutsTaken = 0;
            return _mutations;
        }

        /// <summary>An array of at least <paramref name="count"/> lookups, its contents undefined.</summary>
        public StoredLookup[] Lookups(int count)
        {
            if (_lookups.Length < count)
            {
                _lookups = new StoredLookup[count];
            }

            return _lookups;
        }
    }

    /// <summary>
    /// Resolves validated inputs of one write batch into mutations: names to ids (allocating new
    /// ids once for the whole batch, so concepts and facts of one batch share the allocator),
    /// duplicates within the batch and against the stored state to "unchanged". It reads the
    /// collection's state, which only the writer (the caller) changes.
    /// </summary>
    private sealed class BatchPlanner(Collection owner)
    {
        private const int NameVectorsPerTask = 256;
        private const int LookupsPerTask = 1024;

        /// <summary>How many facts ahead of its scan an adjacency list is fetched: far enough for a
        /// memory access to complete, near enough that it is still cached when scanned.</summary>
        private const int PrefetchDistance = 8;

        private readonly IdAllocator _conceptIds = new(owner._concepts.FreeIds, owner._concepts.IdLimit);
        private readonly IdAllocator _edgeIds = new(owner._edges.FreeIds, owner._edges.IdLimit);
        private readonly Dictionary<string, ConceptRecord> _plannedConcepts = Cleared(owner._planning.Concepts);
        private readonly Dictionary<string, int> _newRelations = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ConceptRecord>.AlternateLookup<ReadOnlySpan<char>> _plannedConceptsByChars = owner._planning.Concepts.GetAlternateLookup<ReadOnlySpan<char>>();
        private readonly Dictionary<(int, int, int), EdgeRecord?> _plannedEdges = Cleared(owner._planning.Edges);
        private readonly List<(string Name, float[] Vector)> _unfilledNameVectors = Cleared(owner._planning.UnfilledNameVectors);
        private readonly List<Mutation> _batch = owner._planning.NewBatch();

        /// <summary>The planned mutations, with every new concept's name vector filled in.</summary>
        public List<Mutation> Complete()
        {
            FillNameVectors();
            // The reused containers keep their capacity, not the records of a write long done.
            _plannedConcepts.Clear();
            _plannedEdges.Clear();
            return _batch;
        }

        public WriteSummary UpsertConcepts(IEnumerable<ConceptInput> concepts)
        {
            // Comparisons below read the vectors of concepts planned earlier in this batch.
            FillNameVectors();
            int applied = 0, unchanged = 0;
            foreach (ConceptInput input in concepts)
            {
                ConceptRecord? current = _plannedConcepts.GetValueOrDefault(input.Name) ?? owner.CurrentConcept(input.Name);
                ConceptRecord record;
                if (current is null)
                {
                    record = new ConceptRecord(_conceptIds.Next(), input.Name, (float[]?)input.Vector?.Clone() ?? NewNameVector(input.Name), CopyMap(input.Metadata));
                }
                else
                {
                    if (input.Vector is not null && _unfilledNameVectors.Count > 0)
                    {
                        // A concept created earlier in this batch holds zeros until its name vector is
                        // filled: a zero vector given for it again compared equal and was dropped.
                        FillNameVectors();
                    }

                    bool sameVector = input.Vector is null || input.Vector.AsSpan().SequenceEqual(current.Vector);
                    bool sameMetadata = input.Metadata is null || SameMap(input.Metadata, current.Metadata);
                    if (sameVector && sameMetadata)
                    {
                        unchanged++;
                        continue;
                    }

                    record = current with
                    {
                        Vector = (float[]?)input.Vector?.Clone() ?? current.Vector,
                        Metadata = input.Metadata is null ? current.Metadata : CopyMap(input.Metadata),
                    };
                }

                _plannedConcepts[input.Name] = record;
                _batch.Add(new Mutation.PutConcept(record));
                applied++;
            }

            return new WriteSummary(applied, unchanged);
        }

        public WriteSummary AddFacts(IReadOnlyList<FactInput> facts)
        {
            int applied = 0, unchanged = 0, conceptsBefore = _plannedConcepts.Count, relationsBefore = _newRelations.Count;
            var reader = new FactReader(facts);
            StoredLookup[] stored = LookUpStored(reader);
            _plannedEdges.EnsureCapacity(_plannedEdges.Count + facts.Count);
            _batch.EnsureCapacity(_batch.Count + facts.Count);
            for (int i = 0; i < facts.Count; i++)
            {
                StoredLookup known = stored[i];
                FactReader.Fact fact = reader[i];
                // Names new to the collection resolve here, in fact order, so ids are allocated as replay will.
                int head = known.Head >= 0 ? known.Head : NewConceptId(fact.Head, fact.Source?.Head);
                int relation = known.Relation >= 0 ? known.Relation : NewRelationId(fact.Relation, fact.Source?.Relation);
                int tail = known.Tail >= 0 ? known.Tail : NewConceptId(fact.Tail, fact.Source?.Tail);
                var key = (head, relation, tail);
                float weight = fact.Weight;
                IReadOnlyDictionary<string, string>? payload = fact.Payload is { Count: > 0 } given ? CopyMap(given) : null;
                // One probe finds the edge planned earlier in the batch and reserves the slot for this one.
                ref EdgeRecord? planned = ref CollectionsMarshal.GetValueRefOrAddDefault(_plannedEdges, key, out _);
                EdgeRecord? existing = planned
                    ?? (known.Edge >= 0
                        ? new EdgeRecord(known.Edge, head, relation, tail, owner._edges.Weight(known.Edge), owner._edges.Payload(known.Edge))
                        : (EdgeRecord?)null);
                if (existing is { } same && same.Weight.Equals(weight) && SameMap(payload ?? RecordCodec.EmptyMap, same.Payload ?? RecordCodec.EmptyMap))
                {
                    unchanged++;
                    continue;
                }

                var edge = new EdgeRecord(existing?.Id ?? _edgeIds.Next(), head, relation, tail, weight, payload);
                planned = edge;
                _batch.Add(owner._planning.PutEdge(edge));
                applied++;
            }

            return new WriteSummary(applied, unchanged, _plannedConcepts.Count - conceptsBefore, _newRelations.Count - relationsBefore);
        }

        /// <summary>
        /// Per fact, the ids its names already have in the collection and, when all three exist, the
        /// stored edge it repeats. These hash probes and adjacency scans miss the cache and are most of
        /// planning; the stored state does not change while the writer plans, so a large batch is
        /// looked up on all cores.
        /// </summary>
        private StoredLookup[] LookUpStored(FactReader facts)
        {
            StoredLookup[] found = owner._planning.Lookups(facts.Count);
            InParallel(facts.Count, LookupsPerTask, (start, end) =>
            {
                // Heads and tails are looked up together, so that their cache misses overlap.
                int count = end - start;
                Span<int> ids = count <= LookupsPerTask ? stackalloc int[2 * LookupsPerTask].Slice(0, 2 * count) : new int[2 * count];
                facts.FindConceptIds(owner._concepts, start, count, ids);
                for (int i = 0; i < count; i++)
                {
                    int relation = owner._relations.TryGetId(facts.Relation(start + i), out int id) ? id : -1;
                    found[start + i] = new StoredLookup(ids[2 * i], relation, ids[(2 * i) + 1], -1);
                }

                // With the ids known, the edge filter's words and then the adjacency lists the scans
                // read are fetched ahead of them, the lists for the facts that may be stored (a bulk
                // load's new facts mostly are not).
                for (int i = start; i < end; i++)
                {
                    if (i + (3 * PrefetchDistance) < end && found[i + (3 * PrefetchDistance)] is { Head: >= 0, Relation: >= 0, Tail: >= 0 } ahead)
                    {
                        owner._edges.PrefetchFilterOf(ahead.Head, ahead.Relation, ahead.Tail);
                    }

                    if (i + (2 * PrefetchDistance) < end && MayBeStored(found[i + (2 * PrefetchDistance)]) is { } later)
                    {
                        owner._edges.PrefetchListsOf(later.Head, later.Tail, references: true);
                    }

                    if (i + PrefetchDistance < end && MayBeStored(found[i + PrefetchDistance]) is { } next)
                    {
                        owner._edges.PrefetchListsOf(next.Head, next.Tail, references: false);
                    }

                    if (MayBeStored(found[i]) is { } lookup && owner._edges.TryFind(lookup.Head, lookup.Relation, lookup.Tail, out int edge))
                    {
                        found[i] = found[i] with { Edge = edge };
                    }
                }
            });
            return found;
        }

        /// <summary>The lookup when its fact may be stored: its names all are, and the edge filter
        /// does not rule it out.</summary>
        private StoredLookup? MayBeStored(StoredLookup lookup) =>
            lookup.Head >= 0 && lookup.Relation >= 0 && lookup.Tail >= 0 && owner._edges.MayContain(lookup.Head, lookup.Relation, lookup.Tail) ? lookup : null;

        /// <summary>The id of a concept not stored yet (<see cref="LookUpStored"/> found none): planned
        /// earlier in this batch, or new, with its name vector. A new one keeps the caller's string
        /// <paramref name="given"/> when there is one, not a copy: later facts naming it by that
        /// same string are then matched by reference, without reading its characters (a copy cost
        /// 6–11 % of the engine's facts per CPU-second in the storage bench, whose facts share names).</summary>
        private int NewConceptId(ReadOnlySpan<char> chars, string? given)
        {
            if (_plannedConceptsByChars.TryGetValue(chars, out ConceptRecord? planned))
            {
                return planned.Id;
            }

            string name = given ?? chars.ToString();
            var record = new ConceptRecord(_conceptIds.Next(), name, NewNameVector(name), RecordCodec.EmptyMap);
            _plannedConcepts[name] = record;
            _batch.Add(new Mutation.PutConcept(record));
            return record.Id;
        }

        /// <summary>The id of a relation not stored yet: planned earlier in this batch, or new (keeping
        /// <paramref name="given"/>, as <see cref="NewConceptId"/> does).</summary>
        private int NewRelationId(ReadOnlySpan<char> chars, string? given)
        {
            Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> newRelations = _newRelations.GetAlternateLookup<ReadOnlySpan<char>>();
            if (newRelations.TryGetValue(chars, out int id))
            {
                return id;
            }

            string name = given ?? chars.ToString();
            id = owner._relations.Count + _newRelations.Count;
            _newRelations[name] = id;
            _batch.Add(new Mutation.PutRelation(new RelationRecord(id, name, null, false, false, -1, [])));
            return id;
        }

        /// <summary>A new concept's name vector, allocated now and computed by <see cref="FillNameVectors"/>.</summary>
        private float[] NewNameVector(string name)
        {
            var vector = new float[owner.Dimension];
            _unfilledNameVectors.Add((name, vector));
            return vector;
        }

        /// <summary>Name vectors cost microseconds each (a Gaussian per component); a batch's new
        /// concepts get theirs on all cores at once instead of one by one while planning.</summary>
        private void FillNameVectors()
        {
            InParallel(_unfilledNameVectors.Count, NameVectorsPerTask, (start, end) =>
            {
                for (int i = start; i < end; i++)
                {
                    NameVector.Fill(_unfilledNameVectors[i].Name, _unfilledNameVectors[i].Vector);
                }
            });
            _unfilledNameVectors.Clear();
        }

        private static Dictionary<TKey, TValue> Cleared<TKey, TValue>(Dictionary<TKey, TValue> reused)
            where TKey : notnull
        {
            reused.Clear();
            return reused;
        }

        private static List<T> Cleared<T>(List<T> reused)
        {
            reused.Clear();
            return reused;
        }

        /// <summary>A copy in the key order the record codec stores, so a map enumerates the same
        /// before and after a reopen.</summary>
        private static Dictionary<string, string> CopyMap(IReadOnlyDictionary<string, string>? map) =>
            map is null ? [] : map.OrderBy(pair => pair.Key, StringComparer.Ordinal).ToDictionary(StringComparer.Ordinal);

        private static bool SameMap(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
            a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out string? value) && value == pair.Value);
    }
}
