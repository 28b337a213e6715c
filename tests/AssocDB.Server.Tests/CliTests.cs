using System.Text.Json;
using AssocDB.Cli;

namespace AssocDB.Server.Tests;

/// <summary>The <c>assocdb</c> tool drives a real server: tables for people, JSON for scripts, and a
/// non-zero exit code with the status on stderr when the server refuses a call.</summary>
public sealed class CliTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Family_example_through_the_command_line()
    {
        string c = ServerFixture.NewCollection("cli");
        await Ok("collection", "create", c, "--dim", "4", "--metric", "dot");
        await Ok("relation", "define", "-c", c, "mother_of", "--inverse-of", "child_of");
        await Ok("relation", "define", "-c", c, "grandmother_of", "--inverse-of", "grandchild_of", "--compose", "mother_of,mother_of");
        await Ok("fact", "add", "-c", c, "A", "mother_of", "B");
        await Ok("fact", "add", "-c", c, "B", "mother_of", "C");

        string table = await Ok("related", "-c", c, "A", "grandmother_of");
        string[] lines = table.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("concept", lines[0], StringComparison.Ordinal);
        Assert.Contains("derived", lines[1], StringComparison.Ordinal);
        Assert.Contains("A mother_of B; B mother_of C", lines[1], StringComparison.Ordinal);

        using JsonDocument json = JsonDocument.Parse(await Ok("related", "-c", c, "C", "child_of", "--json"));
        JsonElement answer = Assert.Single(json.RootElement.EnumerateArray());
        Assert.Equal("B", answer.GetProperty("concept").GetString());
        Assert.Equal("ANSWER_KIND_DERIVED", answer.GetProperty("kind").GetString());

        Assert.Contains("in", await Ok("neighbors", "-c", c, "B"), StringComparison.Ordinal);
        using JsonDocument described = JsonDocument.Parse(await Ok("collection", "describe", c, "--json"));
        Assert.Equal("3", Assert.Single(described.RootElement.EnumerateArray()).GetProperty("conceptCount").GetString());
        Assert.Contains("total_facts", await Ok("stats"), StringComparison.Ordinal);
        await Ok("checkpoint", "-c", c);
    }

    [Fact]
    public async Task Refused_call_exits_non_zero_with_the_status()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync(["related", "-c", "no-such-collection", "a", "r", "--server", fixture.Server.Address], output, error);
        Assert.Equal(1, code);
        Assert.Contains("NotFound", error.ToString(), StringComparison.Ordinal);
    }

    private async Task<string> Ok(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync([.. args, "--server", fixture.Server.Address], output, error);
        Assert.True(code == 0, $"assocdb {string.Join(' ', args)} exited {code}: {error}");
        return output.ToString();
    }
}
