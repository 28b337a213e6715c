using System.Globalization;
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
        JsonElement answer = Assert.Single(json.RootElement.GetProperty("answers").EnumerateArray());
        Assert.Equal("B", answer.GetProperty("concept").GetString());
        Assert.Equal("ANSWER_KIND_DERIVED", answer.GetProperty("kind").GetString());

        Assert.Contains("in", await Ok("neighbors", "-c", c, "B"), StringComparison.Ordinal);
        // B has two edges: a page of one says how to read on, and the token reads the other.
        string firstPage = await Ok("neighbors", "-c", c, "B", "--limit", "1");
        string token = firstPage.Split("--page-token ")[1].Split(')')[0];
        Assert.Contains("A", firstPage, StringComparison.Ordinal);
        string lastPage = await Ok("neighbors", "-c", c, "B", "--limit", "1", "--page-token", token);
        Assert.Contains("C", lastPage, StringComparison.Ordinal);
        Assert.DoesNotContain("--page-token", lastPage, StringComparison.Ordinal);
        using JsonDocument described = JsonDocument.Parse(await Ok("collection", "describe", c, "--json"));
        Assert.Equal("3", Assert.Single(described.RootElement.EnumerateArray()).GetProperty("conceptCount").GetString());
        Assert.Contains("total_facts", await Ok("stats"), StringComparison.Ordinal);
        await Ok("checkpoint", "-c", c);
    }

    // An estimate past TimeSpan's range threw out of the progress callback: the tool ended with a
    // stack trace while watching a learn of billions of epochs, and left the job training.
    [Fact]
    public void A_progress_estimate_past_any_meaning_is_shown_as_unknown()
    {
        Assert.Equal("1:01:01", ProgressBar.Duration(3661));
        Assert.Equal("?", ProgressBar.Duration(ProgressBar.LongestEstimate.TotalSeconds));
        Assert.Equal("?", ProgressBar.Duration(1e12));
        Assert.Equal("?", ProgressBar.Duration(double.NaN));
    }

    [Fact]
    public async Task Refused_call_exits_non_zero_with_the_status()
    {
        (_, string error) = await Run(1, "related", "-c", "no-such-collection", "a", "r");
        Assert.Contains("NotFound", error, StringComparison.Ordinal);
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
            // One JSON document for scripts (it was the job's, then the count's on a line of its own).
            using (JsonDocument minedJson = JsonDocument.Parse(await Ok("mine", "-c", c, "--apply", "--json")))
            {
                Assert.Contains("mother_of ∘ mother_of ⇒ grandmother_of", minedJson.RootElement.GetProperty("job").GetRawText(), StringComparison.Ordinal);
                Assert.Equal(JsonValueKind.Number, minedJson.RootElement.GetProperty("applied").ValueKind);
            }

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
            Assert.Equal(6, list.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // a header and five jobs
            Assert.Contains("evaluate", list, StringComparison.Ordinal);

            (_, string refused) = await Run(2, "learn", "-c", c, "--model", "word2vec");
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

    [Fact]
    public async Task Concepts_through_the_command_line()
    {
        string c = ServerFixture.NewCollection("cliconcept");
        await Ok("collection", "create", c, "--dim", "4");
        string upserted = await Ok("concept", "upsert", "-c", c, "paris", "--vector", "1,0,0.5,0", "--meta", "country=fr");
        Assert.Equal("1", AssocDbTool.Field(upserted, "applied"));
        await Ok("concept", "upsert", "-c", c, "rome", "--vector", "0,0,1,0");

        string table = await Ok("concept", "get", "-c", c, "paris");
        Assert.Equal(("paris", "country=fr", "1 0 0.5 0"), (AssocDbTool.Field(table, "name"), AssocDbTool.Field(table, "metadata"), AssocDbTool.Field(table, "vector")));
        using (JsonDocument json = JsonDocument.Parse(await Ok("concept", "get", "-c", c, "paris", "--json")))
        {
            Assert.Equal("fr", json.RootElement.GetProperty("metadata").GetProperty("country").GetString());
            Assert.Equal([1f, 0f, 0.5f, 0f], json.RootElement.GetProperty("vector").GetProperty("values").EnumerateArray().Select(v => v.GetSingle()));
        }

        using (JsonDocument deleted = JsonDocument.Parse(await Ok("concept", "delete", "-c", c, "paris", "rome", "--json")))
        {
            Assert.Equal(2, deleted.RootElement.GetProperty("applied").GetInt32());
        }

        (_, string missing) = await Run(1, "concept", "get", "-c", c, "paris");
        Assert.Contains("NotFound", missing, StringComparison.Ordinal);
        Assert.Equal("0", AssocDbTool.Field(await Ok("concept", "delete", "-c", c, "paris", "--missing-ok"), "applied"));
    }

    [Fact]
    public async Task Fact_removal_through_the_command_line()
    {
        string c = ServerFixture.NewCollection("cliremove");
        await Ok("collection", "create", c, "--dim", "4");
        await Ok("fact", "add", "-c", c, "A", "knows", "B");
        await Ok("fact", "add", "-c", c, "A", "knows", "C");

        Assert.Equal("1", AssocDbTool.Field(await Ok("fact", "remove", "-c", c, "A", "knows", "B"), "applied"));
        using (JsonDocument again = JsonDocument.Parse(await Ok("fact", "remove", "-c", c, "A", "knows", "B", "--json")))
        {
            Assert.Equal((0, 1), (again.RootElement.GetProperty("applied").GetInt32(), again.RootElement.GetProperty("unchanged").GetInt32()));
        }

        using JsonDocument left = JsonDocument.Parse(await Ok("neighbors", "-c", c, "A", "--json"));
        Assert.Equal("C", Assert.Single(left.RootElement.GetProperty("edges").EnumerateArray()).GetProperty("fact").GetProperty("tail").GetString());
    }

    [Fact]
    public async Task Search_relate_and_recall_through_the_command_line()
    {
        string c = ServerFixture.NewCollection("clivector");
        await Ok("collection", "create", c, "--dim", "4");
        foreach ((string name, string vector) in new[] { ("paris", "1,0,0,0"), ("france", "1,1,0,0"), ("rome", "0,0,1,0"), ("italy", "0,1,1,0") })
        {
            await Ok("concept", "upsert", "-c", c, name, "--vector", vector);
        }

        await Ok("relation", "define", "-c", c, "capital_of", "--vector", "0,1,0,0");
        await Ok("fact", "add", "-c", c, "paris", "capital_of", "france");
        await Ok("fact", "add", "-c", c, "rome", "capital_of", "italy");

        string[] hits = Lines(await Ok("search", "-c", c, "--vector", "0.9,0.05,0,0", "-k", "1"));
        Assert.Equal(["concept", "paris"], hits.Select(line => line.Split(' ')[0]));
        using (JsonDocument translated = JsonDocument.Parse(await Ok("search", "-c", c, "--concept", "paris", "--plus", "capital_of", "-k", "1", "--json")))
        {
            Assert.Equal("france", Assert.Single(translated.RootElement.GetProperty("results")[0].GetProperty("hits").EnumerateArray()).GetProperty("concept").GetString());
            Assert.False(translated.RootElement.GetProperty("truncated").GetBoolean());
        }

        string[] relate = Lines(await Ok("relate", "-c", c, "paris", "france"));
        Assert.Contains(relate, line => line.StartsWith("capital_of", StringComparison.Ordinal) && line.Contains("stored", StringComparison.Ordinal));
        Assert.Contains(relate, line => line.StartsWith("relation (vector reading)", StringComparison.Ordinal));
        using (JsonDocument related = JsonDocument.Parse(await Ok("relate", "-c", c, "paris", "france", "--json")))
        {
            Assert.Equal("capital_of", related.RootElement.GetProperty("graph")[0].GetProperty("relation").GetString());
            Assert.Equal("capital_of", related.RootElement.GetProperty("vectorReading")[0].GetProperty("relation").GetString());
        }

        string[] recalled = Lines(await Ok("recall", "-c", c, "capital_of", "--concept", "paris", "--direction", "forward", "-k", "1"));
        Assert.StartsWith("forward weight α = ", recalled[0], StringComparison.Ordinal);
        Assert.StartsWith("france", recalled[2], StringComparison.Ordinal);
        using JsonDocument fromVector = JsonDocument.Parse(await Ok("recall", "-c", c, "capital_of", "--vector", "0,0,1,0", "--direction", "forward", "-k", "1", "--json"));
        Assert.Equal("italy", Assert.Single(fromVector.RootElement.GetProperty("nearest").EnumerateArray()).GetProperty("concept").GetString());
    }

    // Mistakes the parser or the client catches before any call: the documented exit code 2 (the
    // parser's own code was 1, a refused call's) and a message, never a stack trace. A bad --vector
    // number used to crash the process, and a server address without http:// failed in the channel.
    [Fact]
    public async Task Bad_command_lines_exit_2_with_a_message()
    {
        foreach (string[] args in new string[][]
        {
            ["collection", "create", "x"],                                  // --dim missing
            ["collection", "create", "x", "--dim", "4", "--metric", "foo"],
            ["search", "-c", "x", "--vector", "1,abc"],
            ["stats", "--timeout", "soon"],
            ["nosuchcommand"],
            ["fact", "add", "a", "r", "b", "-c", "x", "--file", "facts.tsv"], // both: one was dropped without a word
            ["fact", "add", "-c", "x", "--file", "facts.tsv", "--batch", "0"],  // was taken for 1
        })
        {
            (int code, _, string error) = await AssocDbTool.RunAsync([.. args, "--server", fixture.Server.Address]);
            Assert.True(code == 2, $"assocdb {string.Join(' ', args)} exited {code}: {error}");
            Assert.StartsWith("error: ", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        }

        (int badServer, _, string why) = await AssocDbTool.RunAsync(["stats", "--server", "localhost:50051"]);
        Assert.Equal(2, badServer);
        Assert.Contains("http://", why, StringComparison.Ordinal);
        (int ingest, _, string ingestWhy) = await AssocDbTool.RunAsync(["ingest", "facts.tsv", "-c", "x", "--server", "127.0.0.1:50051"]);
        Assert.Equal(1, ingest); // ingest's own table: 1 is a bad command line
        Assert.DoesNotContain("   at ", ingestWhy, StringComparison.Ordinal);

        // Each of these ended in an unhandled exception and a stack trace, or was taken for a value
        // it is not: a count that is not a number (ingest's validator asked for its value), a time
        // limit past TimeSpan's range, a folder given as a file, a rejects file in a missing folder.
        string input = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(input, "a\tr\tb\n");
            foreach ((string[] args, int expected, string said) in new (string[], int, string)[]
            {
                (["ingest", input, "-c", "x", "--batch", "5k"], 1, "5k"),
                (["ingest", input, "-c", "x", "--format", "tsv", "--rejects", "/no/such/folder/rejects.tsv"], 1, "--rejects /no/such/folder/rejects.tsv cannot be written"),
                (["learn", "-c", "x", "--time-limit", "Infinity"], 2, "--time-limit must be a finite number of seconds"),
                (["fact", "add", "-c", "x", "--file", Path.GetTempPath()], 2, Path.GetTempPath()),
                // An empty session id reached the ingester, which threw.
                (["ingest", input, "-c", "x", "--session", ""], 1, "--session must not be empty"),
                // A number or a list was taken for an enum value: 7 (undefined) was sent, 2 chose l2.
                (["collection", "create", "x", "--dim", "4", "--metric", "7"], 2, "'7' is not one of cosine, dot, l2"),
                (["collection", "create", "x", "--dim", "4", "--metric", "dot,l2"], 2, "'dot,l2' is not one of"),
            })
            {
                (int code, _, string error) = await AssocDbTool.RunAsync([.. args, "--server", fixture.Server.Address]);
                Assert.True(code == expected, $"assocdb {string.Join(' ', args)} exited {code}: {error}");
                Assert.Contains(said, error, StringComparison.Ordinal);
                Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(input);
        }
    }

    // System.CommandLine reads float options in the current culture: under de-DE, where '.' groups
    // thousands, --weight 0.5 stored 5 (and fr-FR refused it). A vector was printed rounded to four
    // decimals, so it could not be given back to --vector.
    [Fact]
    public async Task Numbers_are_read_and_written_the_same_in_every_locale()
    {
        string c = ServerFixture.NewCollection("clilocale");
        await Ok("collection", "create", c, "--dim", "4");
        CultureInfo before = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.GetCultureInfo("de-DE");
        string table;
        try
        {
            await Ok("fact", "add", "-c", c, "a", "r", "b", "--weight", "0.5");
            await Ok("concept", "upsert", "-c", c, "v", "--vector", "0.25,0.123456,1E-05,-0.1");
            table = await Ok("concept", "get", "-c", c, "v");
        }
        finally
        {
            CultureInfo.CurrentCulture = before;
        }

        using JsonDocument edges = JsonDocument.Parse(await Ok("neighbors", "-c", c, "a", "--json"));
        Assert.Equal(0.5, Assert.Single(edges.RootElement.GetProperty("edges").EnumerateArray()).GetProperty("weight").GetDouble());
        Assert.Equal("0.25 0.123456 1E-05 -0.1", AssocDbTool.Field(table, "vector"));
    }

    // A fourth column of `fact add --file` is the weight (it was dropped), --weight the default for
    // lines without one (or with an empty one); list options take one value per flag, so the next word stays an argument.
    [Fact]
    public async Task Fact_files_keep_their_weights_and_list_options_take_one_value()
    {
        string c = ServerFixture.NewCollection("cliweights");
        string facts = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(facts, ["a\tr\tb\t0.25", "a\tr\tc", "a\tr\td\t"]);
            await Ok("collection", "create", c, "--dim", "4");
            await Ok("fact", "add", "-c", c, "--file", facts, "--weight", "0.5");
            using JsonDocument edges = JsonDocument.Parse(await Ok("neighbors", "-c", c, "a", "--json"));
            Dictionary<string, double> weights = edges.RootElement.GetProperty("edges").EnumerateArray()
                .ToDictionary(e => e.GetProperty("fact").GetProperty("tail").GetString()!, e => e.GetProperty("weight").GetDouble());
            Assert.Equal(0.25, weights["b"]);
            Assert.Equal(0.5, weights["c"]);
            Assert.Equal(0.5, weights["d"]); // an empty weight column is no weight

            await Ok("concept", "upsert", "-c", c, "--meta", "kind=x", "d");
            using JsonDocument concept = JsonDocument.Parse(await Ok("concept", "get", "-c", c, "d", "--json"));
            Assert.Equal("x", concept.RootElement.GetProperty("metadata").GetProperty("kind").GetString());

            using JsonDocument checkpoint = JsonDocument.Parse(await Ok("checkpoint", "-c", c, "--json"));
            Assert.Equal(JsonValueKind.Number, checkpoint.RootElement.GetProperty("elapsed_seconds").ValueKind);

            // A failure part way says how far the file got: its earlier batches are stored.
            await File.WriteAllLinesAsync(facts, ["e	r	f", "e	r	g", "e	r"]);
            (_, string error) = await Run(2, "fact", "add", "-c", c, "--file", facts, "--batch", "1");
            Assert.Contains("the file's first 2 facts were stored before this error", error, StringComparison.Ordinal);
            using JsonDocument stored = JsonDocument.Parse(await Ok("neighbors", "-c", c, "e", "--json"));
            Assert.Equal(2, stored.RootElement.GetProperty("edges").GetArrayLength());
        }
        finally
        {
            File.Delete(facts);
        }
    }

    private static string[] Lines(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    private async Task<string> Ok(params string[] args) => (await Run(0, args)).Output;

    private async Task<(string Output, string Error)> Run(int expectedCode, params string[] args)
    {
        (int code, string output, string error) = await AssocDbTool.RunAsync([.. args, "--server", fixture.Server.Address]);
        Assert.True(code == expectedCode, $"assocdb {string.Join(' ', args)} exited {code}, not {expectedCode}: {error}");
        return (output, error);
    }
}

/// <summary>The tool authenticates with <c>--api-key</c>, or with <c>ASSOCDB_API_KEY</c> (and finds
/// the server through <c>ASSOCDB_SERVER</c>) when the command line does not say; the command line
/// wins over the environment.</summary>
public sealed class CliKeyTests(GuardedServerFixture fixture) : IClassFixture<GuardedServerFixture>
{
    private const string Unreachable = "http://127.0.0.1:1";

    [Fact]
    public async Task Api_key_option_authenticates_and_without_it_the_call_is_refused()
    {
        (int code, string output, string error) = await AssocDbTool.RunAsync(["collection", "list", "--server", fixture.Server.Address, "--api-key", GuardedServerFixture.Key]);
        Assert.True(code == 0, error);
        Assert.StartsWith("name", output, StringComparison.Ordinal);

        (int refused, _, string why) = await AssocDbTool.RunAsync(["collection", "list", "--server", fixture.Server.Address]);
        Assert.Equal(1, refused);
        Assert.Contains("Unauthenticated", why, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_and_key_come_from_the_environment_when_not_given()
    {
        (int code, _, string error) = await AssocDbTool.RunAsync(["stats", "--json"], Environment(fixture.Server.Address, GuardedServerFixture.Key));
        Assert.True(code == 0, error);

        (int keyless, _, string why) = await AssocDbTool.RunAsync(["stats"], Environment(fixture.Server.Address, key: null));
        Assert.Equal(1, keyless);
        Assert.Contains("Unauthenticated", why, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Command_line_overrides_the_environment()
    {
        (int code, _, string error) = await AssocDbTool.RunAsync(
            ["stats", "--server", fixture.Server.Address, "--api-key", GuardedServerFixture.Key], Environment(Unreachable, "wrong-key"));
        Assert.True(code == 0, error);

        (int wrongKey, _, string why) = await AssocDbTool.RunAsync(
            ["stats", "--api-key", "wrong-key"], Environment(fixture.Server.Address, GuardedServerFixture.Key));
        Assert.Equal(1, wrongKey);
        Assert.Contains("Unauthenticated", why, StringComparison.Ordinal);
    }

    // The environment's key was the --api-key option's default, and help prints defaults: every
    // help screen (and every mistyped command, which prints help) showed the secret.
    [Fact]
    public async Task Help_never_shows_the_api_key_from_the_environment()
    {
        var environment = Environment(fixture.Server.Address, GuardedServerFixture.Key);
        foreach (string[] args in new string[][] { ["--help"], ["stats", "--help"], ["collection", "create", "x", "--metric", "foo"] })
        {
            (_, string output, string error) = await AssocDbTool.RunAsync(args, environment);
            Assert.DoesNotContain(GuardedServerFixture.Key, output + error, StringComparison.Ordinal);
        }
    }

    private static Dictionary<string, string> Environment(string server, string? key) =>
        key is null ? new() { ["ASSOCDB_SERVER"] = server } : new() { ["ASSOCDB_SERVER"] = server, ["ASSOCDB_API_KEY"] = key };
}

/// <summary>Runs the <c>assocdb</c> tool in-process with an environment of its own: the variables
/// given, none else (so a developer's own <c>ASSOCDB_API_KEY</c> cannot leak into a test).</summary>
internal static class AssocDbTool
{
    public static async Task<(int Code, string Output, string Error)> RunAsync(string[] args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync(args, output, error, name => environment?.GetValueOrDefault(name));
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>The value of one row of a two-column field/value table.</summary>
    public static string Field(string table, string name) =>
        table.Split('\n').Select(line => line.Split(' ', 2, StringSplitOptions.TrimEntries)).Single(cells => cells[0] == name)[1];
}
