using AssocDB.Engine;
using AssocDB.Engine.Model;

// Usage: AssocDB.CrashWriter DATA_DIR FIRST_BATCH
// Writes batch FIRST_BATCH, FIRST_BATCH+1, … forever into collection "crash", printing
// "ACK n" once batch n is acknowledged. Even batches add facts, odd ones upsert concepts with
// vectors and rewrite the hot concepts, then checkpoint: from the third such batch on, every one
// leaves enough of the (64 KiB-file) state store dead to compact it, however slow the machine, so
// kills land during compactions as well as during the 100 ms periodic checkpoints.
if (args.Length != 2 || !int.TryParse(args[1], out int batch))
{
    Console.Error.WriteLine("usage: AssocDB.CrashWriter DATA_DIR FIRST_BATCH");
    return 2;
}

var options = new DatabaseOptions
{
    DataDirectory = args[0],
    Device = "cpu",
    CheckpointInterval = TimeSpan.FromMilliseconds(100),
    LogPageSizeBits = 22,
    StateIndexBytes = 1L << 16,
    StateMemoryBytes = 1L << 24,
    StateSegmentBytes = 1L << 16,
};
await using AssocDatabase database = AssocDatabase.Open(options);
if (!database.GetCollection(CrashBatches.Collection).IsOk)
{
    database.CreateCollection(new CollectionSpec(CrashBatches.Collection, CrashBatches.Dimension));
}

Collection collection = database.GetCollection(CrashBatches.Collection).Value;
while (true)
{
    Result<WriteSummary> result = batch % 2 == 0
        ? await collection.AddFactsAsync(CrashBatches.Facts(batch))
        : await collection.UpsertConceptsAsync([.. CrashBatches.Concepts(batch), .. CrashBatches.Hot(batch)]);
    if (!result.IsOk)
    {
        Console.Error.WriteLine($"batch {batch} failed: {result.Error}");
        return 1;
    }

    Console.WriteLine($"ACK {batch}");
    if (batch % 2 == 1)
    {
        await collection.CheckpointAsync();
    }

    batch++;
}
