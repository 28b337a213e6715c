namespace AssocDB.Engine.Vectors;

/// <summary>Which rows a search may return, beyond the rule that free rows never are.</summary>
/// <param name="Exclude">Rows to leave out, per query (index j applies to query j), typically the
/// concepts the query was composed from; null or a shorter list means none for the rest.</param>
/// <param name="Allowed">When set, only these rows may be returned (shared by all queries).</param>
public sealed record SearchFilter(IReadOnlyList<IReadOnlyCollection<int>>? Exclude = null, RowFilter? Allowed = null)
{
    /// <summary>No exclusions, no filter.</summary>
    public static SearchFilter None { get; } = new();

    /// <summary>The most rows any single query excludes.</summary>
    internal int MaxExcluded => Exclude is null || Exclude.Count == 0 ? 0 : Exclude.Max(e => e?.Count ?? 0);

    /// <summary>The rows query <paramref name="query"/> excludes, as a set (empty when none).</summary>
    internal IReadOnlySet<int> ExcludedFor(int query) =>
        Exclude is not null && query < Exclude.Count && Exclude[query] is { Count: > 0 } rows
            ? rows as IReadOnlySet<int> ?? new HashSet<int>(rows)
            : EmptySet;

    private static readonly HashSet<int> EmptySet = [];
}
