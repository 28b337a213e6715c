namespace AssocDB.Server.Tests.Ingestion;

/// <summary>The shared knowledge-graph splits (<c>shared/data/kg</c>), found by walking up from the
/// test binaries: beside the repository in CI (<c>&lt;repo&gt;/../shared</c>), above the worktree in
/// development. Never copied into the repository.</summary>
internal static class KgData
{
    private static readonly Lazy<string> Root = new(Find);

    /// <summary>The path of <c>&lt;name&gt;/&lt;split&gt;.txt</c>.</summary>
    public static string File(string name, string split = "train") => Path.Combine(Root.Value, name, split + ".txt");

    /// <summary>The distinct <c>head, relation, tail</c> lines of a split.</summary>
    public static HashSet<(string Head, string Relation, string Tail)> Triples(string name, string split = "train") =>
        [.. System.IO.File.ReadLines(File(name, split)).Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(f => (f[0], f[1], f[2]))];

    private static string Find()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data", "kg");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException(
            $"shared/data/kg was not found above {AppContext.BaseDirectory}; the tests expect the shared data folder beside the repository (<repo>/../shared)");
    }
}
