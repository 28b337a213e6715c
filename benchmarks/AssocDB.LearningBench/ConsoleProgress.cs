using System.Globalization;
using AssocDB.Engine.Learning;

namespace AssocDB.LearningBench;

/// <summary>Prints each epoch's report synchronously (unlike <see cref="Progress{T}"/>, which
/// posts to the thread pool) and sums the pure training time.</summary>
internal sealed class ConsoleProgress : IProgress<TrainingProgress>
{
    public double TrainingSeconds { get; private set; }

    public void Report(TrainingProgress value)
    {
        TrainingSeconds += value.EpochTime.TotalSeconds;
        string validation = value.ValidationMrr is { } mrr ? mrr.ToString("F3", CultureInfo.InvariantCulture) : "-";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  epoch {value.Epoch,4}: loss {value.Loss:F4}  valid MRR {validation,5}  {value.TriplesPerSecond,8:F0} triples/s  {value.EpochTime.TotalSeconds:F1} s  (elapsed {value.Elapsed.TotalSeconds:F0} s)"));
    }
}
