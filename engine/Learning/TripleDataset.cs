namespace AssocDB.Engine.Learning;

/// <summary>
/// A knowledge-graph benchmark in the usual layout: a folder with <c>train.txt</c>,
/// <c>valid.txt</c> and <c>test.txt</c>, one <c>head&lt;TAB&gt;relation&lt;TAB&gt;tail</c> per line.
/// Names become dense ids in order of first appearance (train, then valid, then test), so the
/// ids of a data set are the same on every load.
/// </summary>
public sealed class TripleDataset
{
    private TripleDataset(
        IReadOnlyList<string> concepts, IReadOnlyList<string> relations, Triple[] train, Triple[] validation, Triple[] test)
    {
        Concepts = concepts;
        Relations = relations;
        Train = train;
        Validation = validation;
        Test = test;
    }

    /// <summary>Concept names by id.</summary>
    public IReadOnlyList<string> Concepts { get; }

    /// <summary>Relation names by id.</summary>
    public IReadOnlyList<string> Relations { get; }

    /// <summary>Training triples.</summary>
    public Triple[] Train { get; }

    /// <summary>Validation triples.</summary>
    public Triple[] Validation { get; }

    /// <summary>Test triples.</summary>
    public Triple[] Test { get; }

    /// <summary>Loads the three splits of a folder. Throws when a file is missing or a line is not
    /// three tab-separated fields: a broken data set is a fault, not an outcome.</summary>
    public static TripleDataset Load(string directory)
    {
        var concepts = new List<string>();
        var relations = new List<string>();
        var conceptIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var relationIds = new Dictionary<string, int>(StringComparer.Ordinal);

        Triple[] ReadSplit(string file)
        {
            string path = Path.Combine(directory, file);
            var triples = new List<Triple>();
            int lineNumber = 0;
            foreach (string line in File.ReadLines(path))
            {
                lineNumber++;
                if (line.Length == 0)
                {
                    continue;
                }

                string[] fields = line.Split('\t');
                if (fields.Length != 3)
                {
                    throw new InvalidDataException($"{path}:{lineNumber}: expected head<TAB>relation<TAB>tail");
                }

                triples.Add(new Triple(
                    Intern(fields[0], conceptIds, concepts),
                    Intern(fields[1], relationIds, relations),
                    Intern(fields[2], conceptIds, concepts)));
            }

            return [.. triples];
        }

        Triple[] train = ReadSplit("train.txt");
        Triple[] validation = ReadSplit("valid.txt");
        Triple[] test = ReadSplit("test.txt");
        return new TripleDataset(concepts, relations, train, validation, test);
    }

    private static int Intern(string name, Dictionary<string, int> ids, List<string> names)
    {
        if (!ids.TryGetValue(name, out int id))
        {
            id = names.Count;
            ids.Add(name, id);
            names.Add(name);
        }

        return id;
    }
}
