namespace AssocDB.Engine.Vectors;

/// <summary>
/// The top-k rows for one query, best first: score descending, then row id ascending on ties.
/// Scores follow the matrix's metric (higher is closer; l2 scores are negated squared distances).
/// </summary>
/// <param name="Rows">Row ids (concept ids), best first.</param>
/// <param name="Scores">The score of each row, same order.</param>
public sealed record SearchHits(int[] Rows, float[] Scores)
{
    /// <summary>Number of hits (less than k when fewer rows qualify).</summary>
    public int Count => Rows.Length;
}
