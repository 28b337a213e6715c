using AssocDB.Engine.Learning;

namespace AssocDB.Engine.Tests.Learning;

/// <summary>
/// Finds the shared knowledge-graph data (<c>&lt;repo&gt;/../shared/data/kg</c>) by walking up from
/// the test binaries, and caches each loaded data set for the test run.
/// </summary>
internal static class KgData
{
    private static readonly Lazy<string> Root = new(FindRoot);
    private static readonly Dictionary<string, TripleDataset> Loaded = [];

    /// <summary>Loads (once) the data set in <c>shared/data/kg/&lt;name&gt;</c>.</summary>
    public static TripleDataset Load(string name)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(name, out TripleDataset? dataset))
            {
                dataset = TripleDataset.Load(Path.Combine(Root.Value, name));
                Loaded.Add(name, dataset);
            }

            return dataset;
        }
    }

    private static string FindRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "data", "kg");
            if (File.Exists(Path.Combine(candidate, "README.md")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException(
            $"knowledge-graph data not found: expected shared/data/kg (with README.md) beside the repository root, " +
            $"in a folder above {AppContext.BaseDirectory}. Check out the shared data next to the repository.");
    }
}
