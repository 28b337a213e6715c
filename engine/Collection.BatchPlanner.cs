using System.Collections.Concurrent;
using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>
    /// Resolves validated inputs of one write batch into mutations: names to ids (allocating new
    /// ids once for the whole batch, so concepts and facts of one batch share the allocator),
    /// duplicates within the batch and against the stored state to "unchanged". It reads the
    /// collection's state, which only the writer (the caller) changes.
    /// </summary>
    private sealed class BatchPlanner(Collection owner)
    {
        private const int NameVectorsPerTask = 256;

        private readonly IdAllocator _conceptIds = new(owner._concepts.FreeIds, owner._concepts.IdLimit);
        private readonly IdAllocator _edgeIds = new(owner._edges.FreeIds, owner._edges.IdLimit);
        private readonly Dictionary<string, ConceptRecord> _plannedConcepts = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _newRelations = new(StringComparer.Ordinal);
        private readonly Dictionary<(int, int, int), EdgeRecord> _plannedEdges = [];
        private readonly List<(string Name, float[] Vector)> _unfilledNameVectors = [];
        private readonly List<Mutation> _batch = [];

        /// <summary>The planned mutations, with every new concept's name vector filled in.</summary>
        public List<Mutation> Complete()
        {
            FillNameVectors();
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

        public WriteSummary AddFacts(IEnumerable<FactInput> facts)
        {
            int applied = 0, unchanged = 0, conceptsBefore = _plannedConcepts.Count, relationsBefore = _newRelations.Count;
            foreach (FactInput fact in facts)
            {
                int head = ConceptId(fact.Head), relation = RelationId(fact.Relation), tail = ConceptId(fact.Tail);
                var key = (head, relation, tail);
                IReadOnlyDictionary<string, string>? payload = fact.Payload is { Count: > 0 } ? CopyMap(fact.Payload) : null;
                EdgeRecord? existing = _plannedEdges.GetValueOrDefault(key)
                    ?? (owner._edges.TryFind(head, relation, tail, out int stored)
                        ? new EdgeRecord(stored, head, relation, tail, owner._edges.Weight(stored), owner._edges.Payload(stored))
                        : null);
                if (existing is not null && existing.Weight.Equals(fact.Weight) && SameMap(payload ?? RecordCodec.EmptyMap, existing.Payload ?? RecordCodec.EmptyMap))
                {
                    unchanged++;
                    continue;
                }

                var edge = new EdgeRecord(existing?.Id ?? _edgeIds.Next(), head, relation, tail, fact.Weight, payload);
                _plannedEdges[key] = edge;
                _batch.Add(new Mutation.PutEdge(edge));
                applied++;
            }

            return new WriteSummary(applied, unchanged, _plannedConcepts.Count - conceptsBefore, _newRelations.Count - relationsBefore);
        }

        /// <summary>The id of a stored or planned concept; a new name becomes a concept with its name vector.</summary>
        private int ConceptId(string name)
        {
            if (_plannedConcepts.TryGetValue(name, out ConceptRecord? planned))
            {
                return planned.Id;
            }

            if (owner._concepts.TryGetId(name, out int id))
            {
                return id;
            }

            var record = new ConceptRecord(_conceptIds.Next(), name, NewNameVector(name), RecordCodec.EmptyMap);
            _plannedConcepts[name] = record;
            _batch.Add(new Mutation.PutConcept(record));
            return record.Id;
        }

        private int RelationId(string name)
        {
            if (owner._relations.TryGetId(name, out int id) || _newRelations.TryGetValue(name, out id))
            {
                return id;
            }

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
            if (_unfilledNameVectors.Count > 0)
            {
                Parallel.ForEach(Partitioner.Create(0, _unfilledNameVectors.Count, NameVectorsPerTask), range =>
                {
                    for (int i = range.Item1; i < range.Item2; i++)
                    {
                        NameVector.Fill(_unfilledNameVectors[i].Name, _unfilledNameVectors[i].Vector);
                    }
                });
                _unfilledNameVectors.Clear();
            }
        }

        private static Dictionary<string, string> CopyMap(IReadOnlyDictionary<string, string>? map) =>
            map is null ? [] : new Dictionary<string, string>(map, StringComparer.Ordinal);

        private static bool SameMap(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
            a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out string? value) && value == pair.Value);
    }
}
