namespace AssocDB.Server.Configuration;

/// <summary>The configuration is invalid; <see cref="Problems"/> says how, one sentence each.</summary>
public sealed class ServerConfigurationException : Exception
{
    /// <summary>Creates the exception from its problems.</summary>
    public ServerConfigurationException(IReadOnlyList<string> problems)
        : base("invalid configuration:" + Environment.NewLine + string.Join(Environment.NewLine, (problems ?? []).Select(p => "  - " + p)))
    {
        Problems = problems ?? [];
    }

    /// <summary>Every problem found.</summary>
    public IReadOnlyList<string> Problems { get; }
}
