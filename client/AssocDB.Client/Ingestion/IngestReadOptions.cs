namespace AssocDB.Client.Ingestion;

/// <summary>What readers check beyond a format's syntax.</summary>
public sealed record IngestReadOptions
{
    /// <summary>The collection's vector dimension: vectors of another width are rejected. When null, the
    /// first vector read sets the width for the rest of the file.</summary>
    public int? Dimension { get; init; }

    /// <summary>Whether the collection's metric is cosine: a non-zero vector too short to normalize
    /// (a norm under 2⁻¹⁰⁰) is then rejected here, as the server would refuse it.</summary>
    public bool Cosine { get; init; }

    /// <summary>For a <c>.npy</c> file: the names file, one name per line in row order. When null, the
    /// sibling file with the extension <c>.names</c> (<c>emb.npy</c> → <c>emb.names</c>).</summary>
    public string? NamesPath { get; init; }
}
