namespace AssocDB.Server.Tests;

/// <summary>
/// The README's "A session" block, run as written against a real server: every <c>assocdb</c> line
/// must succeed, and every <c># …</c> line under a command must be a line of what that command
/// printed (spacing aside). So the README cannot drift from what the tool answers.
/// </summary>
public sealed class ReadmeSessionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Collection = "family";

    [Fact]
    public async Task The_readme_session_prints_what_the_readme_shows()
    {
        // The block's own collection name, made unique so the fixture's other tests cannot collide.
        string collection = ServerFixture.NewCollection(Collection);
        List<(string[] Args, List<string> Expected)> commands = SessionCommands();
        Assert.True(commands.Count >= 5, "the README's session block was not found");
        Assert.Contains(commands, c => c.Expected.Count > 0);

        foreach ((string[] args, List<string> expected) in commands)
        {
            string[] run = [.. args.Select(a => a == Collection ? collection : a), "--server", fixture.Server.Address];
            (int code, string output, string error) = await AssocDbTool.RunAsync(run);
            string command = string.Join(' ', args);
            Assert.True(code == 0, $"assocdb {command} exited {code}: {error}");
            string[] printed = [.. output.Split('\n').Select(Normalized)];
            foreach (string line in expected)
            {
                Assert.True(printed.Contains(Normalized(line)), $"assocdb {command} printed\n{output}\nwithout the README's line\n{line}");
            }
        }
    }

    /// <summary>The commands of the README's first shell block after "## A session", each with the
    /// output lines the README shows under it; trailing comments on a command are dropped.</summary>
    private static List<(string[] Args, List<string> Expected)> SessionCommands()
    {
        string[] lines = File.ReadAllLines(Path.Combine(RepositoryFiles.Root, "README.md"));
        int start = Array.FindIndex(lines, l => l.StartsWith("## A session", StringComparison.Ordinal));
        int open = Array.FindIndex(lines, start + 1, l => l.StartsWith("```sh", StringComparison.Ordinal));
        int close = Array.FindIndex(lines, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        var commands = new List<(string[] Args, List<string> Expected)>();
        foreach (string line in lines[(open + 1)..close])
        {
            if (line.StartsWith("assocdb ", StringComparison.Ordinal))
            {
                int comment = line.IndexOf("  #", StringComparison.Ordinal);
                string command = comment < 0 ? line : line[..comment];
                commands.Add((command.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..], []));
            }
            else if (line.StartsWith("# ", StringComparison.Ordinal) && commands.Count > 0)
            {
                commands[^1].Expected.Add(line[2..]);
            }
        }

        return commands;
    }

    private static string Normalized(string line) => string.Join(' ', line.Split(' ', StringSplitOptions.RemoveEmptyEntries));
}
