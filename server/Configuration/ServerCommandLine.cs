namespace AssocDB.Server.Configuration;

/// <summary>
/// Turns the server's short switches into configuration keys, so the command line is the last
/// configuration source: <c>--port 5</c> and <c>--port=5</c> become <c>--AssocDB:Port=5</c>, and the
/// flag <c>--insecure</c> becomes <c>--AssocDB:Insecure=true</c>. Other arguments (full keys such as
/// <c>--AssocDB:Limits:MaxK=100</c> or <c>--Kestrel:…</c>) pass through unchanged.
/// </summary>
public static class ServerCommandLine
{
    /// <summary>The short switches and the option each sets.</summary>
    public static IReadOnlyDictionary<string, string> Switches { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--host"] = nameof(AssocServerOptions.Host),
        ["--port"] = nameof(AssocServerOptions.Port),
        ["--metrics-port"] = nameof(AssocServerOptions.MetricsPort),
        ["--data"] = nameof(AssocServerOptions.DataDirectory),
        ["--device"] = nameof(AssocServerOptions.Device),
        ["--api-key"] = nameof(AssocServerOptions.ApiKey),
    };

    /// <summary>The arguments with short switches rewritten to configuration keys.</summary>
    public static string[] Normalize(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var result = new List<string>(args.Count);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            string name = equals < 0 ? arg : arg[..equals];
            if (string.Equals(name, "--insecure", StringComparison.OrdinalIgnoreCase))
            {
                // A separate true or false is the flag's value: left as an argument of its own,
                // "--insecure false" turned insecure mode on.
                string value = equals >= 0 ? arg[(equals + 1)..]
                    : i + 1 < args.Count && bool.TryParse(args[i + 1], out _) ? args[++i]
                    : "true";
                result.Add($"--{AssocServerOptions.Section}:{nameof(AssocServerOptions.Insecure)}={value}");
            }
            else if (Switches.TryGetValue(name, out string? option))
            {
                string value = equals >= 0 ? arg[(equals + 1)..]
                    : i + 1 < args.Count ? args[++i]
                    : throw new ServerConfigurationException([$"{name} needs a value."]);
                result.Add($"--{AssocServerOptions.Section}:{option}={value}");
            }
            else
            {
                result.Add(arg);
            }
        }

        return [.. result];
    }
}
