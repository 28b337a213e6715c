using AssocDB.Engine.Learning;
using AssocDB.Engine.Model;

namespace AssocDB.Engine.Storage;

/// <summary>A concept as persisted: its row id, name, exact vector and metadata.</summary>
internal sealed record ConceptRecord(int Id, string Name, float[] Vector, IReadOnlyDictionary<string, string> Metadata);

/// <summary>A relation as persisted. <see cref="InverseId"/> is −1 when the relation has no inverse.
/// Compositions are the declared rules <c>First ∘ Second ⇒ this relation</c>, as relation ids;
/// <see cref="Learned"/> the learned rules concluding this relation. <see cref="Trained"/> says the
/// vector was written by training rather than given; <see cref="Operator"/> how it applies.</summary>
internal sealed record RelationRecord(
    int Id,
    string Name,
    float[]? Vector,
    bool Symmetric,
    bool Transitive,
    int InverseId,
    IReadOnlyList<(int First, int Second)> Compositions,
    RelationOperator Operator = RelationOperator.Translation,
    bool Trained = false,
    IReadOnlyList<LearnedRule>? Learned = null,
    DistanceNorm TrainedNorm = DistanceNorm.L1);

/// <summary>A learned rule concluding a relation: <see cref="Other"/> is the inverse's body relation,
/// <see cref="First"/>/<see cref="Second"/> a composition's body (−1 where unused).</summary>
internal sealed record LearnedRule(PropertyKind Kind, int Other, int First, int Second, RuleStatistics Statistics)
{
    /// <summary>The confidence the reasoner multiplies along a proof: AMIE's PCA confidence.</summary>
    public double Confidence => Statistics.PcaConfidence;
}

/// <summary>A fact as persisted: one undirected edge with its orientation (head → tail). A struct,
/// held inline by its mutation: a bulk load plans one per fact, and a separate object each was a
/// quarter of the engine's garbage.</summary>
internal readonly record struct EdgeRecord(int Id, int Head, int Relation, int Tail, float Weight, IReadOnlyDictionary<string, string>? Payload);

/// <summary>One state change. A write batch becomes a list of these, resolved to ids before it is
/// logged, so that replaying the log reproduces exactly the same ids.</summary>
internal abstract record Mutation
{
    internal sealed record PutConcept(ConceptRecord Concept) : Mutation;

    internal sealed record DeleteConcept(int Id) : Mutation;

    internal sealed record PutRelation(RelationRecord Relation) : Mutation;

    /// <summary>Puts an edge. <see cref="Edge"/> is settable so that a bulk load's planning can
    /// reuse the puts of earlier writes, one per fact (see <see cref="Collection"/>'s planning buffers).</summary>
    internal sealed record PutEdge(EdgeRecord Edge) : Mutation
    {
        public EdgeRecord Edge { get; set; } = Edge;
    }

    internal sealed record DeleteEdge(int Id) : Mutation;

    /// <summary>Puts a mark. <paramref name="Moved"/>: a kept mark moved to a lower id when marks
    /// are deleted (see <see cref="IngestMarks.IdFor"/>), logged with its write order, which replay
    /// keeps; any other mark is written by its entry, whose sequence is its write order.</summary>
    internal sealed record PutIngestMark(IngestMark Mark, bool Moved = false) : Mutation;

    internal sealed record DeleteIngestMark(int Id) : Mutation;
}

/// <summary>A batch read back from the write-ahead log, with its sequence number (null for an
/// entry written before entries were numbered), and where in the entry each mutation starts and,
/// last, where the final one ends.</summary>
internal sealed record LoggedBatch(long? Sequence, List<Mutation> Mutations, List<int> MutationBounds);

/// <summary>One mutation of a log entry as the state store applies it: the kind and id of the
/// record it puts or deletes, and the record's encoding (its id first; empty for a delete), which
/// is a span of the entry.</summary>
internal readonly ref struct StoredMutation(RecordKind kind, int id, ReadOnlySpan<byte> record, bool recordAsStored = true)
{
    public RecordKind Kind { get; } = kind;

    public int Id { get; } = id;

    public ReadOnlySpan<byte> Record { get; } = record;

    public bool IsDelete => Record.IsEmpty;

    /// <summary>Whether <see cref="Record"/> is what the store keeps; false for an ingest mark
    /// written by its entry, which the store keeps with the entry's sequence after it.</summary>
    public bool RecordAsStored { get; } = recordAsStored;
}

/// <summary>The last durable batch sequence of one bulk-ingest session, so a resumed ingest skips
/// what is already stored. Logged in the same entry as the batch it marks. <see cref="Written"/> is
/// that entry's log sequence number, which orders the marks by recency (see <see cref="IngestMarks"/>):
/// the log does not repeat it inside the mark, the state store's record does (0 in records and log
/// entries written before it was kept).</summary>
internal sealed record IngestMark(int Id, string Session, long Sequence, long Written);

/// <summary>Record kinds; the first byte of every state-store key.</summary>
internal enum RecordKind : byte
{
    Concept = 1,
    Relation = 2,
    Edge = 3,
    IngestMark = 4,
}
