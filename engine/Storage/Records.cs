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

/// <summary>A fact as persisted: one undirected edge with its orientation (head → tail).</summary>
internal sealed record EdgeRecord(int Id, int Head, int Relation, int Tail, float Weight, IReadOnlyDictionary<string, string>? Payload);

/// <summary>One state change. A write batch becomes a list of these, resolved to ids before it is
/// logged, so that replaying the log reproduces exactly the same ids.</summary>
internal abstract record Mutation
{
    internal sealed record PutConcept(ConceptRecord Concept) : Mutation;

    internal sealed record DeleteConcept(int Id) : Mutation;

    internal sealed record PutRelation(RelationRecord Relation) : Mutation;

    internal sealed record PutEdge(EdgeRecord Edge) : Mutation;

    internal sealed record DeleteEdge(int Id) : Mutation;

    internal sealed record PutIngestMark(IngestMark Mark) : Mutation;
}

/// <summary>A batch read back from the write-ahead log, with its sequence number (null for an
/// entry written before entries were numbered).</summary>
internal sealed record LoggedBatch(long? Sequence, List<Mutation> Mutations);

/// <summary>The last durable batch sequence of one bulk-ingest session, so a resumed ingest skips
/// what is already stored. Logged in the same entry as the batch it marks.</summary>
internal sealed record IngestMark(int Id, string Session, long Sequence);

/// <summary>Record kinds; the first byte of every state-store key.</summary>
internal enum RecordKind : byte
{
    Concept = 1,
    Relation = 2,
    Edge = 3,
    IngestMark = 4,
}
