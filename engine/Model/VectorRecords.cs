namespace AssocDB.Engine.Model;

/// <summary>
/// A search query: a raw vector, or a concept plus and minus relation vectors (<c>c + r</c> asks
/// "what is r of c?", <c>c − r</c> asks "whose r is c?"). Exactly one of Vector and Concept is set.
/// </summary>
public sealed record SearchQuery(
    float[]? Vector = null,
    string? Concept = null,
    IReadOnlyList<string>? Plus = null,
    IReadOnlyList<string>? Minus = null);

/// <summary>Options shared by the queries of one search call.</summary>
/// <param name="K">How many nearest concepts to return, 1..10000.</param>
/// <param name="ExcludeQueryConcepts">Leave the query's own concept out of its results.</param>
/// <param name="MetadataFilter">Only concepts whose metadata has every one of these key=value pairs.</param>
public sealed record SearchOptions(
    int K = 10,
    bool ExcludeQueryConcepts = true,
    IReadOnlyDictionary<string, string>? MetadataFilter = null);

/// <summary>One search result: a concept and its score under the collection's metric (higher is closer).</summary>
public sealed record SearchHit(int Id, string Concept, float Score);

/// <summary>A relation whose vector is near <c>v(b) − v(a)</c>, with its cosine similarity.</summary>
public sealed record RelationScore(string Relation, float Score);

/// <summary>What relates a to b: stored and derived relations (each with a proof) and the vector
/// reading, the relations nearest to <c>v(b) − v(a)</c>.</summary>
/// <param name="Graph">The relations that hold in the graph.</param>
/// <param name="VectorReading">The relations nearest to <c>v(b) − v(a)</c>, best first.</param>
/// <param name="Truncated">Whether the proof searches reached their shared work bound, leaving
/// relations unchecked (those of the edges between a and b first; a stored fact a r b is listed
/// whatever the bound).</param>
public sealed record RelateResult(
    IReadOnlyList<RelatedRelation> Graph,
    IReadOnlyList<RelationScore> VectorReading,
    bool Truncated);

/// <summary>A relation that holds from a to b in the graph, with how it is known.</summary>
public sealed record RelatedRelation(string Relation, AnswerKind Kind, Proof Proof, double Score);

/// <summary>Which way the key–value memory of a relation is read.</summary>
public enum RecallDirection
{
    /// <summary>Keys are heads, values tails: <c>y = Vᵀ softmax(β K x)</c>.</summary>
    Forward,

    /// <summary>Keys are tails, values heads: <c>y' = Kᵀ softmax(β V x)</c>.</summary>
    Reverse,

    /// <summary>Both, mixed by a gate α(x) that favours the end the input matches better.</summary>
    Auto,
}

/// <summary>A recall query against one relation's facts. Exactly one of Vector and Concept is set.</summary>
/// <param name="Relation">The relation whose facts form the memory.</param>
/// <param name="Vector">The input vector x.</param>
/// <param name="Concept">A concept whose vector is the input x.</param>
/// <param name="Direction">Forward, reverse or auto.</param>
/// <param name="Beta">Inverse temperature β of the softmax; larger is sharper.</param>
/// <param name="K">How many concepts nearest to the recalled vector to return.</param>
public sealed record RecallQuery(
    string Relation,
    float[]? Vector = null,
    string? Concept = null,
    RecallDirection Direction = RecallDirection.Auto,
    float Beta = 32f,
    int K = 10);

/// <summary>The recalled vector, its nearest concepts, and the forward weight α used (1 forward, 0
/// reverse, the gate for auto; a symmetric relation is always read from both ends, as auto).</summary>
public sealed record RecallResult(float[] Vector, IReadOnlyList<SearchHit> Nearest, float ForwardWeight);
