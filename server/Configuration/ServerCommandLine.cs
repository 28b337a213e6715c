namespace AssocDB.Server.Configuration;

/// <summary>
/// Turns the server's short switches into configuration keys, so the command line is the last
/// configuration source: <c>--port 5</c> and <c>--port=5</c> become <c>--AssocDB:Port=5</c>, and the
/// flag <c>--insecure</c> becomes <c>--AssocDB:Insecure=true</c>. Full configuration keys (such as
/// <c>--AssocDB:Limits:MaxK=100</c> or <c>--Kestrel:…</c>) pass through unchanged; anything else is
/// an error, so that a mistyped switch stops the server instead of being ignored.
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
            else if (name.StartsWith("--", StringComparison.Ordinal) && name.Contains(':', StringComparison.Ordinal))
            {
                // A configuration key, with its value after '=' or as the next argument.
                result.Add(arg);
                if (equals < 0)
                {
                    // Without a value the configuration would drop the key silently.
                    result.Add(i + 1 < args.Count ? args[++i] : throw new ServerConfigurationException([$"{name} needs a value."]));
                }
            }
            else
            {
                throw new ServerConfigurationException([$"'{arg}' is not an argument the server takes; see --help."]);
            }
        }

        return [.. result];
    }

    /// <summary>Whether the arguments ask for the usage text.</summary>
    public static bool AsksForHelp(IReadOnlyList<string> args) =>
        args.Where((arg, i) => i == 0 || !Switches.ContainsKey(args[i - 1])).Any(arg => arg is "--help" or "-h" or "-?");

    /// <summary>The usage text <c>--help</c> prints.</summary>
    public const string Usage = """
        AssocDB server: gRPC on HTTP/2 over an embedded store.

        Usage: AssocDB.Server [options]

          --host ADDRESS        where gRPC and the metrics port listen (default 127.0.0.1)
          --port N              the gRPC port (default 50051; 0 picks a free one)
          --metrics-port N      the Prometheus /metrics port (default 9464; -1 for none)
          --data DIR            the data folder (default ./data)
          --device D            auto, cpu, cuda or cuda:N (default auto)
          --api-key KEY         clients must send `authorization: Bearer KEY`
          --insecure            allow a non-loopback host without an API key
          --AssocDB:Section:Key=value
                                any setting (e.g. --AssocDB:Limits:MaxK=100,
                                --AssocDB:MinFreeDiskBytes=0); also --Kestrel:… and --Logging:…
          -h, --help            this text

        Settings also come from appsettings.json and ASSOCDB__… environment variables; every one
        is listed in the README's Configuration section. Exit codes: 0 stopped, 1 cannot listen or
        cannot open the database, 2 bad settings.
        """;
}
