namespace AssocDB.Client.Ingestion;

/// <summary>The input formats <see cref="IngestSource"/> reads; <c>client/AssocDB.Cli/INGESTION.md</c> describes each.</summary>
public enum IngestFormat
{
    /// <summary>Chosen from the file name (after a <c>.gz</c> suffix): <c>.tsv</c>/<c>.txt</c> TSV,
    /// <c>.csv</c> CSV, <c>.jsonl</c>/<c>.ndjson</c> JSON Lines, <c>.nt</c> N-Triples,
    /// <c>.npy</c>/<c>.vec</c>/<c>.vectors</c> vectors.</summary>
    Auto,

    /// <summary>Tab-separated <c>head relation tail [weight]</c>.</summary>
    Tsv,

    /// <summary>Comma-separated <c>head,relation,tail[,weight]</c> with RFC 4180 quoting.</summary>
    Csv,

    /// <summary>One JSON object per line: a fact or a concept.</summary>
    JsonLines,

    /// <summary>RDF N-Triples.</summary>
    NTriples,

    /// <summary>Concept vectors: text (<c>name v1 v2 …</c>) or, for <c>.npy</c> files, a NumPy array with a names file.</summary>
    Vectors,
}
