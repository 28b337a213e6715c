using System.Globalization;
using System.Text;
using AssocDB.Protocol.V1;

namespace AssocDB.Cli;

/// <summary>
/// Draws a job's progress on one line of stderr, redrawn in place (<c>\r</c>): a bar, the share
/// done, for training the epoch, loss, validation MRR and rate, and an estimate of the time left
/// (from the share done so far, so it is rough while the share is small).
/// </summary>
internal sealed class ProgressBar(TextWriter writer)
{
    private const int Width = 24;
    private int _drawn;

    /// <summary>Redraws the line for <paramref name="progress"/>.</summary>
    public void Update(JobProgress progress)
    {
        string line = Render(progress);
        writer.Write("\r" + line.PadRight(_drawn));
        writer.Flush();
        _drawn = line.Length;
    }

    /// <summary>Ends the line, when one was drawn.</summary>
    public void Finish()
    {
        if (_drawn > 0)
        {
            writer.WriteLine();
            _drawn = 0;
        }
    }

    public static string Render(JobProgress progress)
    {
        double fraction = Math.Clamp(progress.FractionDone, 0, 1);
        int filled = (int)Math.Round(fraction * Width);
        var line = new StringBuilder();
        line.Append('[').Append('#', filled).Append('·', Width - filled).Append(']');
        line.Append(CultureInfo.InvariantCulture, $" {fraction * 100,3:F0}%");
        if (progress.MaxEpochs > 0)
        {
            line.Append(CultureInfo.InvariantCulture, $"  epoch {progress.Epoch}/{progress.MaxEpochs}");
        }

        if (progress.HasLoss)
        {
            line.Append(CultureInfo.InvariantCulture, $"  loss {progress.Loss:F4}");
        }

        if (progress.HasValidationMrr)
        {
            line.Append(CultureInfo.InvariantCulture, $"  MRR {progress.ValidationMrr:F3}");
        }

        if (progress.TriplesPerSecond > 0)
        {
            line.Append(CultureInfo.InvariantCulture, $"  {Rate(progress.TriplesPerSecond)} triples/s");
        }

        line.Append("  ").Append(progress.State == JobState.Running ? "ETA " + Eta(progress.ElapsedSeconds, fraction) : State(progress.State));
        return line.ToString();
    }

    private static string Rate(double perSecond) => perSecond switch
    {
        >= 1e6 => (perSecond / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (perSecond / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        _ => perSecond.ToString("0", CultureInfo.InvariantCulture),
    };

    private static string Eta(double elapsedSeconds, double fraction) =>
        fraction <= 0 ? "?" : Duration(elapsedSeconds * (1 - fraction) / fraction);

    /// <summary>m:ss, or h:mm:ss from an hour on, the hours counted past a day; "?" past
    /// <see cref="LongestEstimate"/>, where an estimate says nothing (and TimeSpan overflows further
    /// on: a learn of 2 billion epochs whose first took 8 minutes ended the tool and left its job
    /// training).</summary>
    internal static string Duration(double seconds)
    {
        if (!(seconds < LongestEstimate.TotalSeconds))
        {
            return "?";
        }

        var time = TimeSpan.FromSeconds(Math.Round(seconds));
        return time.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)time.TotalHours}:{time.Minutes:D2}:{time.Seconds:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{time.Minutes}:{time.Seconds:D2}");
    }

    /// <summary>The longest time <see cref="Duration"/> shows.</summary>
    internal static readonly TimeSpan LongestEstimate = TimeSpan.FromDays(10_000);

    internal static string State(JobState state) => state.ToString().ToLowerInvariant();
}
