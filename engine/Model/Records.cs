namespace AssocDB.Engine.Model;

/// <summary>What a new collection is: its name, vector dimension, metric and storage precision.</summary>
public sealed record CollectionSpec(
    string Name,
    int Dimension,
    Metric Metric = Metric.Cosine,
    StoragePrecision Precision = StoragePrecision.Float32);

/// <summary>A collection's definition and current counts. An <see cref="CollectionState.Unavailable"/>
/// one has zero counts, and its definition only when its manifest could be read (else an empty name
/// and dimension 0; its <see cref="Folder"/> identifies it).</summary>
public sealed record CollectionInfo(
    string Name,
    int Dimension,
    Metric Metric,
    StoragePrecision Precision,
    long ConceptCount,
    long RelationCount,
    long FactCount)
{
    /// <summary>Whether the collection is open, or could not be opened when the database opened (or
    /// a drop could not delete its folder).</summary>
    public CollectionState State { get; init; } = CollectionState.Available;

    /// <summary>Why an unavailable collection could not be opened; null when it is available.</summary>
    public string? UnavailableReason { get; init; }

    /// <summary>The collection's folder inside the data folder (<c>col-</c> and a hash of its name).</summary>
    public string Folder { get; init; } = "";
}

/// <summary>Whether a collection can be used.</summary>
public enum CollectionState
{
    /// <summary>Open: every operation works on it.</summary>
    Available,

    /// <summary>Its folder could not be opened when the database opened (damaged or missing files,
    /// an I/O error, a second folder of a collection already open), or a drop closed it but could
    /// not delete its folder. Every operation naming it is refused with
    /// <see cref="ErrorCode.FailedPrecondition"/> giving the reason, except a drop, which deletes
    /// the folder; its data stays on disk until then.</summary>
    Unavailable,
}

/// <summary>A concept to create or update. A missing vector keeps the existing one, or for a new
/// concept gets a deterministic pseudo-random unit vector derived from the name.</summary>
public sealed record ConceptInput(
    string Name,
    float[]? Vector = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>A stored concept: its row id in the concept matrix, vector and metadata.</summary>
public sealed record ConceptInfo(
    int Id,
    string Name,
    float[] Vector,
    IReadOnlyDictionary<string, string> Metadata,
    int Degree);

/// <summary>A composition rule <c>First ∘ Second ⇒ (the relation that holds the rule)</c>: if
/// <c>a First b</c> and <c>b Second c</c> then <c>a R c</c>.</summary>
public sealed record Composition(string First, string Second);

/// <summary>A relation to define or update. Properties left null keep their current value (or
/// their default, false / none, for a new relation).</summary>
public sealed record RelationSpec(
    string Name,
    float[]? Vector = null,
    bool? Symmetric = null,
    bool? Transitive = null,
    string? InverseOf = null,
    IReadOnlyList<Composition>? Compositions = null);

/// <summary>A relation with its declared properties, its vector (see <see cref="VectorSource"/>)
/// and the properties learned for it.</summary>
public sealed record RelationInfo(
    int Id,
    string Name,
    float[]? Vector,
    bool Symmetric,
    bool Transitive,
    string? InverseOf,
    IReadOnlyList<Composition> Compositions,
    long FactCount)
{
    /// <summary>Where <see cref="RelationInfo.Vector"/> comes from.</summary>
    public RelationVectorSource VectorSource { get; init; }

    /// <summary>How the vector applies to a concept in <c>c ± r</c>.</summary>
    public RelationOperator Operator { get; init; }

    /// <summary>Properties learned from the data and applied as learned (not declared).</summary>
    public IReadOnlyList<LearnedProperty> Learned { get; init; } = [];
}

/// <summary>A fact to add: <c>Head Relation Tail</c> with a weight and an optional payload.</summary>
public sealed record FactInput(
    string Head,
    string Relation,
    string Tail,
    float Weight = 1f,
    IReadOnlyDictionary<string, string>? Payload = null);

/// <summary>Identifies a fact by its names.</summary>
public sealed record FactKey(string Head, string Relation, string Tail)
{
    /// <inheritdoc />
    public override string ToString() => $"{Head} {Relation} {Tail}";
}

/// <summary>Which way a stored edge points, seen from the concept it was reached from.</summary>
public enum EdgeDirection
{
    /// <summary>The concept is the fact's head.</summary>
    Outgoing,

    /// <summary>The concept is the fact's tail.</summary>
    Incoming,
}

/// <summary>A stored edge as seen from one of its endpoints.</summary>
public sealed record EdgeView(
    FactKey Fact,
    EdgeDirection Direction,
    string Other,
    float Weight,
    IReadOnlyDictionary<string, string> Payload);

/// <summary>How an answer is known.</summary>
public enum AnswerKind
{
    /// <summary>A stored edge states it, in the asked direction.</summary>
    Stored,

    /// <summary>It follows from stored edges by declared relation properties and rules.</summary>
    Derived,

    /// <summary>It follows by properties learned from the data, with a confidence below 1.</summary>
    Learned,

    /// <summary>Vectors alone suggest it; it carries a score, not a proof.</summary>
    Predicted,
}

/// <summary>Why an answer holds: the stored facts used and the rules applied to them, in order.</summary>
public sealed record Proof(IReadOnlyList<FactKey> Facts, IReadOnlyList<string> Rules)
{
    /// <inheritdoc />
    public override string ToString() =>
        string.Join("; ", Facts) + (Rules.Count > 0 ? " ⊢ " + string.Join(", ", Rules) : "");
}

/// <summary>One answer to a query.</summary>
/// <param name="Concept">The answering concept's name.</param>
/// <param name="Kind">Stored, derived, learned or predicted.</param>
/// <param name="Proof">The proof (empty for predicted answers).</param>
/// <param name="Score">Confidence for learned answers (product of rule confidences), similarity for
/// predicted ones, 1 for stored and derived ones.</param>
public sealed record Answer(string Concept, AnswerKind Kind, Proof Proof, double Score);

/// <summary>The answers of a <c>related</c> query, in order.</summary>
/// <param name="answers">The answers returned.</param>
/// <param name="truncated">Whether there may be more: the proof search reached its work bound, or
/// the limit (or <see cref="Collection.MaxProofFacts"/>) cut the list.</param>
public sealed class RelatedAnswers(IReadOnlyList<Answer> answers, bool truncated) : ResultList<Answer>(answers)
{
    /// <summary>Whether there may be more answers than these: the proof search reached its work
    /// bound (these still hold every answer of the depths it completed), or the limit (or
    /// <see cref="Collection.MaxProofFacts"/>) cut the list.</summary>
    public bool Truncated { get; } = truncated;
}

/// <summary>One page of a concept's stored edges, in edge id order.</summary>
/// <param name="edges">The edges of this page.</param>
/// <param name="ids">The edges' ids, in the same order.</param>
/// <param name="more">Whether edges follow this page.</param>
public sealed class EdgePage(IReadOnlyList<EdgeView> edges, IReadOnlyList<int> ids, bool more) : ResultList<EdgeView>(edges)
{
    /// <summary>The edge id to read on after, when more edges follow this page; null when none does.</summary>
    public int? Next => more ? ids[^1] : null;

    /// <summary>Where to read on for a caller that passes on only the first <paramref name="count"/>
    /// edges of this page (1..Count): <see cref="Next"/> when that is all of them, else the id of
    /// the last one passed on.</summary>
    public int? NextAfter(int count) => count < Count ? ids[count - 1] : Next;
}

/// <summary>Options of a <c>related</c> query.</summary>
/// <param name="MaxDepth">How deeply rules nest in one proof: a composition or transitivity at
/// depth d joins premises proved at depth d − 1; reading through an inverse or a symmetry costs
/// none (0 = stored edges only, via inverse and symmetric reading too).</param>
/// <param name="Limit">The most answers returned.</param>
/// <param name="IncludeLearned">Also apply properties learned from the data (answers of kind
/// learned, scored by confidence); declared properties always apply.</param>
public sealed record RelatedOptions(int MaxDepth = 4, int Limit = 1000, bool IncludeLearned = true)
{
    /// <summary>The defaults.</summary>
    public static RelatedOptions Default { get; } = new();
}

/// <summary>What a write batch did.</summary>
/// <param name="Applied">Items that changed state.</param>
/// <param name="Unchanged">Items that were already so (a fact added twice is kept once).</param>
/// <param name="CreatedConcepts">Concepts created implicitly by facts naming them.</param>
/// <param name="CreatedRelations">Relations created implicitly by facts naming them.</param>
public sealed record WriteSummary(int Applied, int Unchanged, int CreatedConcepts = 0, int CreatedRelations = 0);

/// <summary>One batch of a bulk ingest. <paramref name="Session"/> is chosen by the client and
/// <paramref name="Sequence"/> increases by batch, so a resumed ingest can skip what is stored.</summary>
public sealed record IngestBatch(string Session, long Sequence, IReadOnlyList<ConceptInput> Concepts, IReadOnlyList<FactInput> Facts);

/// <summary>An item of an ingest batch that was skipped, and why.</summary>
/// <param name="Field">The item, as <c>concepts[i]…</c> or <c>facts[i]…</c>.</param>
/// <param name="Message">Why it was skipped.</param>
public sealed record IngestRejection(string Field, string Message);

/// <summary>What an ingest batch did.</summary>
/// <param name="AlreadyApplied">The session's batch with this sequence (or a later one) was already
/// durable, so nothing was written.</param>
/// <param name="Concepts">Concept upserts applied and unchanged.</param>
/// <param name="Facts">Facts applied and unchanged (duplicates), with implicitly created names.</param>
/// <param name="Rejected">Items skipped as invalid; the rest of the batch was applied.</param>
public sealed record IngestResult(bool AlreadyApplied, WriteSummary Concepts, WriteSummary Facts, IReadOnlyList<IngestRejection> Rejected);
