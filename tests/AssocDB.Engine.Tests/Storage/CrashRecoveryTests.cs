using System.Diagnostics;
using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;
using Xunit.Abstractions;

namespace AssocDB.Engine.Tests.Storage;

// Guards the durability contract against real crashes: a writer process is killed with SIGKILL at
// seeded random moments; every batch it acknowledged must be there after reopening, and every
// batch is all-or-nothing (one it was still writing may be wholly there or wholly absent). The
// writer also rewrites a set of hot concepts, so the state store compacts its log between kills:
// those must all show the latest batch that survived.
public sealed class CrashRecoveryTests(ITestOutputHelper output)
{
    private const int Trials = 6;

    /// <summary>Trials at most, when the first ones end before a compaction has run (each writer
    /// starts cold, and a loaded machine may kill it before its third checkpointed batch).</summary>
    private const int MaxTrials = 12;

    [Fact]
    public async Task Sigkill_at_random_moments_loses_no_acknowledged_batch_and_tears_none()
    {
        using var folder = new TempDirectory();
        var random = new Random(20261130);
        int nextBatch = 0;
        string? stateFolder = null;
        for (int trial = 0; trial < Trials || (trial < MaxTrials && !Compacted(stateFolder!)); trial++)
        {
            TimeSpan killAfter = TimeSpan.FromMilliseconds(trial < Trials ? random.Next(50, 900) : 2_000);
            HashSet<int> acknowledged = await RunWriterUntilKilledAsync(folder.Path, nextBatch, killAfter);
            Assert.NotEmpty(acknowledged);
            output.WriteLine($"trial {trial}: batches {nextBatch}..{acknowledged.Max()} acknowledged before the kill");

            var options = new DatabaseOptions { DataDirectory = folder.Path, Device = "cpu", CheckpointInterval = TimeSpan.Zero, CheckpointOnClose = false };
            await using (AssocDatabase database = AssocDatabase.Open(options))
            {
                Collection collection = database.GetCollection(CrashBatches.Collection).AssertOk();
                stateFolder = Path.Combine(collection.Directory, "state");
                int highest = acknowledged.Max();
                int latestOdd = -1;
                for (int batch = 0; batch <= highest + 1; batch++)
                {
                    bool present = IsWhollyPresent(collection, batch, out bool partly);
                    if (present && batch % 2 == 1)
                    {
                        latestOdd = batch;
                    }

                    Assert.False(partly && !present, $"trial {trial}: batch {batch} is torn (only part of it survived)");
                    if (acknowledged.Contains(batch))
                    {
                        Assert.True(present, $"trial {trial}: acknowledged batch {batch} is missing after SIGKILL");
                    }

                    if (present)
                    {
                        nextBatch = Math.Max(nextBatch, batch + 1);
                    }
                }

                // Odd batches write the hot concepts; on a slow machine none may have run yet.
                foreach (ConceptInput hot in CrashBatches.Hot(latestOdd))
                {
                    Result<ConceptInfo> stored = collection.GetConcept(hot.Name);
                    if (latestOdd < 0)
                    {
                        Assert.False(stored.IsOk, $"trial {trial}: {hot.Name} exists though no batch that writes it survived");
                    }
                    else
                    {
                        Assert.Equal(hot.Vector, stored.AssertOk().Vector);
                    }
                }
            }
        }

        // The kills did not keep the store from compacting: one of the writer's checkpoints freed
        // its first log file.
        Assert.True(Compacted(stateFolder!), "no compaction ran during the trials");
    }

    private static bool Compacted(string stateFolder) => !File.Exists(Path.Combine(stateFolder, "hlog.log.0"));

    private static bool IsWhollyPresent(Collection collection, int batch, out bool partly)
    {
        int found = 0, expected;
        if (batch % 2 == 0)
        {
            FactInput[] facts = CrashBatches.Facts(batch);
            expected = facts.Length;
            foreach (FactInput fact in facts)
            {
                Result<EdgePage> edges = collection.Neighbors(fact.Head, fact.Relation);
                if (edges.IsOk && edges.Value.Any(edge => edge.Fact == new FactKey(fact.Head, fact.Relation, fact.Tail)
                    && edge.Weight == fact.Weight && edge.Payload["batch"] == $"{batch}"))
                {
                    found++;
                }
            }
        }
        else
        {
            ConceptInput[] concepts = CrashBatches.Concepts(batch);
            expected = concepts.Length;
            foreach (ConceptInput concept in concepts)
            {
                Result<ConceptInfo> stored = collection.GetConcept(concept.Name);
                if (stored.IsOk)
                {
                    Assert.Equal(concept.Vector, stored.Value.Vector);
                    found++;
                }
            }
        }

        partly = found > 0;
        return found == expected;
    }

    private static async Task<HashSet<int>> RunWriterUntilKilledAsync(string folder, int firstBatch, TimeSpan killAfter)
    {
        string writer = Path.Combine(AppContext.BaseDirectory, "AssocDB.CrashWriter.dll");
        var start = new ProcessStartInfo("dotnet", [writer, folder, firstBatch.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start the crash writer");
        var acknowledged = new HashSet<int>();
        var ready = new TaskCompletionSource();
        var stderr = process.StandardError.ReadToEndAsync();
        var reader = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("ACK ", StringComparison.Ordinal))
                {
                    lock (acknowledged)
                    {
                        acknowledged.Add(int.Parse(line.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture));
                    }

                    // The kill clock starts at the first acknowledgement, so a slow start cannot make a trial vacuous.
                    ready.TrySetResult();
                }
            }
        });

        Task exited = process.WaitForExitAsync();
        if (await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60))) != ready.Task)
        {
            throw new InvalidOperationException($"the crash writer did not start: {await stderr}");
        }

        await Task.Delay(killAfter);
        process.Kill(entireProcessTree: true); // SIGKILL on Unix: no finally blocks, no flushes.
        await process.WaitForExitAsync();
        await reader;
        Assert.False(process.ExitCode == 1, $"the writer failed by itself: {await stderr}");
        lock (acknowledged)
        {
            return [.. acknowledged];
        }
    }
}
