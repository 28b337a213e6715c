using System.Text;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>One thing read from an input: a fact, a concept, or a line that could not be used.
/// <see cref="Line"/> is 1-based (for <c>.npy</c> files, the row, which is also the names file's line).</summary>
public abstract record IngestItem(string Source, long Line);

/// <summary>A fact read from <see cref="IngestItem.Source"/> at <see cref="IngestItem.Line"/>.</summary>
/// <remarks>The triple readers keep a fact as the UTF-8 bytes they read and build <see cref="Fact"/>
/// only when it is asked for: <see cref="BulkIngester"/> copies the bytes onto the wire, and a bulk
/// load then makes no strings and no message object per fact (a <see cref="FactInput"/> alone is
/// four objects, its payload map included).</remarks>
public sealed record FactItem : IngestItem
{
    private readonly ReadOnlyMemory<byte> _utf8;
    private readonly int _headEnd;
    private readonly int _relationEnd;
    private readonly float? _weight;
    private FactInput? _fact;

    /// <summary>A fact with everything <see cref="FactInput"/> can carry.</summary>
    public FactItem(string Source, long Line, FactInput Fact)
        : base(Source, Line)
    {
        ArgumentNullException.ThrowIfNull(Fact);
        _fact = Fact;
    }

    /// <summary>A fact without payload, as valid UTF-8 names back to back, one separator byte
    /// apart: head at <c>[0, headEnd)</c>, relation at <c>(headEnd, relationEnd)</c>, tail after.</summary>
    internal FactItem(string source, long line, ReadOnlyMemory<byte> utf8, int headEnd, int relationEnd, float? weight)
        : base(source, line)
    {
        _utf8 = utf8;
        _headEnd = headEnd;
        _relationEnd = relationEnd;
        _weight = weight;
    }

    /// <summary>The fact as a message (built on first use for a fact read from TSV or CSV).</summary>
    public FactInput Fact
    {
        get => _fact ??= Materialize();
        init => _fact = value;
    }

    /// <summary>True while the fact is only its UTF-8 names (<see cref="Fact"/> not built or given).</summary>
    internal bool IsUtf8 => _fact is null;

    internal ReadOnlySpan<byte> HeadUtf8 => _utf8.Span[.._headEnd];

    internal ReadOnlySpan<byte> RelationUtf8 => _utf8.Span[(_headEnd + 1).._relationEnd];

    internal ReadOnlySpan<byte> TailUtf8 => _utf8.Span[(_relationEnd + 1)..];

    internal float? Weight => _weight;

    /// <summary>Equal when source, line and fact are; the fact's form (bytes or message) does not count.</summary>
    public bool Equals(FactItem? other) => other is not null && base.Equals(other) && Fact.Equals(other.Fact);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(base.GetHashCode(), Fact);

    /// <summary>The positional parts, as the record's constructor takes them.</summary>
    public void Deconstruct(out string Source, out long Line, out FactInput Fact)
    {
        Source = this.Source;
        Line = this.Line;
        Fact = this.Fact;
    }

    private FactInput Materialize()
    {
        var fact = new FactInput
        {
            Head = Encoding.UTF8.GetString(HeadUtf8),
            Relation = Encoding.UTF8.GetString(RelationUtf8),
            Tail = Encoding.UTF8.GetString(TailUtf8),
        };
        if (_weight is float weight)
        {
            fact.Weight = weight;
        }

        return fact;
    }
}

/// <summary>A concept (with its vector or metadata) read from <see cref="IngestItem.Source"/>.</summary>
public sealed record ConceptItem(string Source, long Line, ConceptInput Concept) : IngestItem(Source, Line);

/// <summary>A line that was not stored, and why (a sentence).</summary>
public sealed record RejectedItem(string Source, long Line, string Reason) : IngestItem(Source, Line)
{
    /// <summary>How many item numbers the line takes: as many as the items it would be when stored,
    /// as far as its shape shows (a JSON-lines fact with head_vector and tail_vector, three), so that
    /// numbering does not depend on which values a client version accepts (see
    /// <see cref="BulkIngester"/>'s remarks).</summary>
    public int Items
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Items), value, "a rejected line takes at least one number");
    } = 1;

    /// <summary>The reject-file form: <c>source:line&lt;TAB&gt;reason</c>.</summary>
    public override string ToString() => $"{Source}:{Line}\t{Reason}";
}
