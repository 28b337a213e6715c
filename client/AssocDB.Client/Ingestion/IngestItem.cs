using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>One thing read from an input: a fact, a concept, or a line that could not be used.
/// <see cref="Line"/> is 1-based (for <c>.npy</c> files, the row, which is also the names file's line).</summary>
public abstract record IngestItem(string Source, long Line);

/// <summary>A fact read from <see cref="IngestItem.Source"/> at <see cref="IngestItem.Line"/>.</summary>
public sealed record FactItem(string Source, long Line, FactInput Fact) : IngestItem(Source, Line);

/// <summary>A concept (with its vector or metadata) read from <see cref="IngestItem.Source"/>.</summary>
public sealed record ConceptItem(string Source, long Line, ConceptInput Concept) : IngestItem(Source, Line);

/// <summary>A line that was not stored, and why (a sentence).</summary>
public sealed record RejectedItem(string Source, long Line, string Reason) : IngestItem(Source, Line)
{
    /// <summary>The reject-file form: <c>source:line&lt;TAB&gt;reason</c>.</summary>
    public override string ToString() => $"{Source}:{Line}\t{Reason}";
}
