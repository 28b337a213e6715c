namespace AssocDB.GrpcBench;

/// <summary>The machine's load average (1, 5, 15 minutes), since the bench shares its cores.</summary>
internal static class MachineLoad
{
    private const string Path = "/proc/loadavg";

    /// <summary>"1-min 5-min 15-min", or "n/a" where the kernel does not expose it.</summary>
    public static string LoadAverage() =>
        File.Exists(Path) ? string.Join(' ', File.ReadAllText(Path).Split(' ').Take(3)) : "n/a";
}
