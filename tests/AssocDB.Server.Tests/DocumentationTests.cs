using System.CommandLine;
using System.CommandLine.Help;
using System.Reflection;
using AssocDB.Cli;
using AssocDB.Server.Configuration;

namespace AssocDB.Server.Tests;

/// <summary>
/// Every option a user can set is documented where the README sends them: each of the
/// <c>assocdb</c> tool's commands and options in its reference (<c>client/AssocDB.Cli/README.md</c>),
/// and each server setting in the README's configuration table. An option added without its
/// documentation, or documentation left behind by a removed one, fails here.
/// </summary>
public sealed class DocumentationTests
{
    private static readonly string CliReference = Path.Combine(RepositoryFiles.Root, "client", "AssocDB.Cli", "README.md");

    [Fact]
    public void Every_command_and_option_of_the_tool_is_in_its_reference()
    {
        RootCommand root = CliApp.CreateRoot(TextWriter.Null, TextWriter.Null, _ => null);
        Dictionary<string, string> sections = Sections(File.ReadAllLines(CliReference));
        string global = sections["Global options"];
        foreach (Option option in root.Options.Where(o => o.Recursive && Settable(o)))
        {
            Assert.True(global.Contains($"`{option.Name}`", StringComparison.Ordinal), $"the global option {option.Name} is not in the reference's \"Global options\"");
        }

        var documented = sections.Keys.Where(heading => heading.StartsWith("`assocdb ", StringComparison.Ordinal)).ToHashSet();
        var commands = Leaves(root, "assocdb").ToList();
        Assert.True(commands.Count >= 25, $"only {commands.Count} commands were found in the tool");
        foreach ((string path, Command command) in commands)
        {
            string heading = $"`{path}`";
            Assert.True(sections.TryGetValue(heading, out string? section), $"{path} has no section \"### {heading}\" in {CliReference}");
            foreach (Option option in command.Options.Where(Settable))
            {
                Assert.True(section!.Contains($"`{option.Name}`", StringComparison.Ordinal), $"{path}'s option {option.Name} is not in its section of the reference");
            }

            documented.Remove(heading);
        }

        Assert.True(documented.Count == 0, $"the reference documents commands the tool does not have: {string.Join(", ", documented)}");
    }

    [Fact]
    public void Every_server_setting_is_in_the_readme_configuration_table()
    {
        string[] lines = File.ReadAllLines(Path.Combine(RepositoryFiles.Root, "README.md"));
        string[] firstCells =
        [
            .. Sections(lines)["Configuration"].Split('\n')
                .Where(line => line.StartsWith("| `", StringComparison.Ordinal))
                .Select(line => line.Split('|')[1]),
        ];
        var settings = Settings(typeof(AssocServerOptions), "").ToList();
        Assert.Contains("Limits:MaxK", settings);
        foreach (string setting in settings)
        {
            Assert.True(firstCells.Any(cell => cell.Contains($"`{setting}`", StringComparison.Ordinal)), $"the setting {setting} has no row in README.md's configuration table");
        }
    }

    /// <summary>Whether the option is one a user sets (not hidden, not the parser's own --help and --version).</summary>
    private static bool Settable(Option option) => !option.Hidden && option is not HelpOption and not VersionOption;

    /// <summary>The commands without subcommands under <paramref name="command"/>, each with its
    /// path as typed (<c>assocdb collection create</c>).</summary>
    private static IEnumerable<(string Path, Command Command)> Leaves(Command command, string path)
    {
        if (command.Subcommands.Count == 0)
        {
            yield return (path, command);
        }

        foreach (Command subcommand in command.Subcommands)
        {
            foreach ((string, Command) leaf in Leaves(subcommand, $"{path} {subcommand.Name}"))
            {
                yield return leaf;
            }
        }
    }

    /// <summary>The settings' configuration keys (<c>Limits:MaxK</c>): the settable properties, those
    /// of nested option classes under their section's name.</summary>
    private static IEnumerable<string> Settings(Type options, string prefix)
    {
        foreach (PropertyInfo property in options.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            if (property.PropertyType.Namespace == typeof(AssocServerOptions).Namespace && property.PropertyType.IsClass)
            {
                foreach (string setting in Settings(property.PropertyType, $"{prefix}{property.Name}:"))
                {
                    yield return setting;
                }
            }
            else
            {
                yield return prefix + property.Name;
            }
        }
    }

    /// <summary>Each heading's text (without its #s) with the lines up to the next heading of any level.</summary>
    private static Dictionary<string, string> Sections(string[] lines)
    {
        var sections = new Dictionary<string, string>();
        string? heading = null;
        var body = new List<string>();
        bool inCode = false;
        foreach (string line in lines.Append("# end"))
        {
            inCode ^= line.StartsWith("```", StringComparison.Ordinal);
            if (!inCode && line.StartsWith('#'))
            {
                if (heading is not null)
                {
                    Assert.True(sections.TryAdd(heading, string.Join('\n', body)), $"the heading \"{heading}\" appears twice");
                }

                heading = line.TrimStart('#').Trim();
                body.Clear();
            }
            else
            {
                body.Add(line);
            }
        }

        return sections;
    }
}
