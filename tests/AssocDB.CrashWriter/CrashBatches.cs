using AssocDB.Engine.Model;

/// <summary>The batches the crash writer writes; the test recomputes them to check what survived.</summary>
public static class CrashBatches
{
    public const string Collection = "crash";
    public const int Dimension = 4;
    public const int FactsPerBatch = 40;
    public const int ConceptsPerBatch = 25;

    /// <summary>Concepts every odd batch rewrites (about 320 kB of records): after a checkpoint their
    /// previous versions are dead in the state store's log, so compactions run while the writer is
    /// being killed.</summary>
    public const int HotConcepts = 4000;

    public static FactInput[] Facts(int batch) =>
        Enumerable.Range(0, FactsPerBatch)
            .Select(j => new FactInput($"n{batch}_{j}", "linked_to", $"n{batch}_{j + 1}", j, new Dictionary<string, string> { ["batch"] = $"{batch}" }))
            .ToArray();

    public static ConceptInput[] Concepts(int batch) =>
        Enumerable.Range(0, ConceptsPerBatch).Select(j => new ConceptInput($"v{batch}_{j}", Vector(batch, j))).ToArray();

    public static ConceptInput[] Hot(int batch) =>
        Enumerable.Range(0, HotConcepts).Select(j => new ConceptInput($"hot_{j}", Vector(batch, j))).ToArray();

    public static float[] Vector(int batch, int item) => [batch, item, batch * 0.5f + item, -item];
}
