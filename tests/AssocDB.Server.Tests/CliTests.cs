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

    [Fact]
    public async Task Learning_through_the_command_line()
    {
        string c = ServerFixture.NewCollection("clilearn");
        string facts = Path.GetTempFileName();
        string test = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(facts, LearningTests.FamilyFacts().Select(f => $"{f.Head}\t{f.Relation}\t{f.Tail}"));
            await File.WriteAllLinesAsync(test, ["c0\tchild_of\tm0", "g0\tgrandmother_of\tc0"]);
            await Ok("collection", "create", c, "--dim", "8");
            await Ok("fact", "add", "-c", c, "--file", facts);

            (string mined, string mineProgress) = await Run(0, "mine", "-c", c, "--apply");
            Assert.Contains("child_of = inverse(mother_of)", mined, StringComparison.Ordinal);
            Assert.Contains("mother_of ∘ mother_of ⇒ grandmother_of", mined, StringComparison.Ordinal);
            Assert.Contains("100%", mineProgress, StringComparison.Ordinal);
            Assert.Contains("learned", await Ok("related", "-c", c, "c0", "child_of"), StringComparison.Ordinal);
            Assert.Contains("child_of = inverse(mother_of) (1)", await Ok("relation", "get", "-c", c, "child_of"), StringComparison.Ordinal);

            (string learned, string bar) = await Run(0, "learn", "-c", c, "--model", "transe", "--epochs", "3", "--batch", "16", "--negatives", "2", "--validation-fraction", "0.1");
            Assert.Contains("epoch 3/3", bar, StringComparison.Ordinal);
            Assert.Contains("loss", bar, StringComparison.Ordinal);
            Assert.Contains("succeeded", learned, StringComparison.Ordinal);
            Assert.Contains("epochs_run", learned, StringComparison.Ordinal);

            string metrics = await Ok("evaluate", "-c", c, "--test", test);
            Assert.Contains("all (both directions)", metrics, StringComparison.Ordinal);
            Assert.Contains("grandmother_of", metrics, StringComparison.Ordinal);

            using JsonDocument detached = JsonDocument.Parse(await Ok("learn", "-c", c, "--model", "transe", "--epochs", "2", "--batch", "16", "--detach", "--json"));
            string id = detached.RootElement.GetProperty("id").GetString()!;
            Assert.Contains("succeeded", await Ok("jobs", "watch", id), StringComparison.Ordinal);
            using JsonDocument job = JsonDocument.Parse(await Ok("jobs", "get", id, "--json"));
            Assert.Equal("JOB_STATE_SUCCEEDED", job.RootElement.GetProperty("state").GetString());
            Assert.Equal(2, job.RootElement.GetProperty("training").GetProperty("epochsRun").GetInt32());
            string list = await Ok("jobs", "list", "-c", c);
            Assert.Equal(5, list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
            Assert.Contains("evaluate", list, StringComparison.Ordinal);

            (_, string refused) = await Run(1, "learn", "-c", c, "--model", "word2vec");
            Assert.Contains("word2vec", refused, StringComparison.Ordinal);
            (_, string tooFew) = await Run(1, "learn", "-c", c, "--epochs", "0");
            Assert.Contains("max_epochs", tooFew, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(facts);
            File.Delete(test);
        }
    }

    private async Task<string> Ok(params string[] args) => (await Run(0, args)).Output;

    private async Task<(string Output, string Error)> Run(int expectedCode, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync([.. args, "--server", fixture.Server.Address], output, error);
        Assert.True(code == expectedCode, $"assocdb {string.Join(' ', args)} exited {code}, not {expectedCode}: {error}");
        return (output.ToString(), error.ToString());
    }
}
