using System.Diagnostics;
using System.Text;
using System.Text.Json;
using AssocDB.Cli;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>Bad lines never stop an ingest (unless <c>--strict</c>): each lands in the reject file
/// as <c>file:line&lt;TAB&gt;reason</c>, and every other line is stored. Exit codes follow the
/// documented table.</summary>
public sealed class MalformedInputIngestTests(MalformedInputIngestTests.LimitedServer fixture) : IClassFixture<MalformedInputIngestTests.LimitedServer>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("assocdb-malformed-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Each_bad_line_is_reported_by_number_and_everything_else_is_stored()
    {
        string collection = await NewCollectionAsync();
        string file = WriteFacts("mixed.tsv");
        string rejects = Path.Combine(_folder, "rejects.txt");

        (int code, string output, _) = await RunAsync("ingest", file, "-c", collection, "--rejects", rejects, "--batch", "2");

        Assert.Equal(0, code);
        Assert.Equal(
        [
            $"{file}:2\texpected head, relation, tail[, weight]; found 2 fields",
            $"{file}:4\tinvalid UTF-8 at byte 7",
            $"{file}:5\tweight is NaN; weights must be finite",
            $"{file}:7\ttail is 1100 bytes of UTF-8; the limit is 1024",
        ], File.ReadAllLines(rejects));
        Assert.Equal((4L, 4L), (Counted(output, "stored"), Counted(output, "rejected")));
        Assert.Equal(4, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
        IReadOnlyList<Edge> edges = (await fixture.Client.NeighborsAsync(collection, "f")).Edges;
        Assert.Equal(2.5f, Assert.Single(edges).Weight);
    }

    [Fact]
    public async Task Strict_stops_at_the_first_bad_line_and_exits_2()
    {
        string collection = await NewCollectionAsync();
        (int code, _, string error) = await RunAsync("ingest", WriteFacts("strict.tsv"), "-c", collection, "--strict");

        Assert.Equal(2, code);
        Assert.Contains(":2\texpected head, relation, tail", error, StringComparison.Ordinal);
        Assert.Equal(1, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    // The documented way on after --strict: fix the line and run again. With the same --session
    // the fixed line must be sent, not answered as already applied: the batch the first run closed
    // at it took its number as the sequence (stored 4 of 5 here), unless the line began a batch.
    [Theory]
    [InlineData("2")]
    [InlineData("1000")]
    public async Task After_strict_stops_the_fixed_line_is_stored_by_a_rerun_of_the_same_session(string batch)
    {
        string collection = await NewCollectionAsync();
        string file = Path.Combine(_folder, $"fixable-{batch}.tsv");
        await File.WriteAllLinesAsync(file, ["a\tr\tb", "c\tr\td", "broken", "e\tr\tf", "g\tr\th"]);
        Assert.Equal(2, (await RunAsync("ingest", file, "-c", collection, "--strict", "--session", $"fixable-{batch}", "--batch", batch)).Code);
        Assert.Equal(2, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);

        await File.WriteAllLinesAsync(file, ["a\tr\tb", "c\tr\td", "broken\tr\tfixed", "e\tr\tf", "g\tr\th"]);
        (int code, string output, _) = await RunAsync("ingest", file, "-c", collection, "--strict", "--session", $"fixable-{batch}", "--batch", batch);

        Assert.Equal(0, code);
        Assert.Equal((2L, 3L), (Counted(output, "resumed"), Counted(output, "stored")));
        Assert.Equal(5, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    [Fact]
    public async Task A_batch_over_the_server_limit_is_refused_with_exit_3()
    {
        string collection = await NewCollectionAsync();
        string file = Path.Combine(_folder, "many.tsv");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, 300).Select(i => $"h{i}\tr\tt{i}"));

        (int code, _, string error) = await RunAsync("ingest", file, "-c", collection, "--batch", "200");

        Assert.Equal(3, code);
        Assert.Contains("ResourceExhausted", error, StringComparison.Ordinal);
    }

    // Lines that parse but cannot travel: a JSON string escaping a lone surrogate (System.Text.Json
    // throws InvalidOperationException reading it, which once ended the run early with exit 0), an
    // N-Triples \U escape above 0x7FFFFFFF (parsed as negative, it crashed the run), and a payload
    // over the server's 1 MiB (it made its whole batch too large a message). Each is rejected by
    // line number and the lines after it are stored.
    [Fact]
    public async Task Lines_that_cannot_travel_are_rejected_alone()
    {
        string collection = await NewCollectionAsync();
        string json = Path.Combine(_folder, "odd.jsonl");
        await File.WriteAllLinesAsync(json,
        [
            """{"head": "a", "relation": "r", "tail": "b"}""",
            """{"head": "\ud800", "relation": "r", "tail": "b"}""",
            $$$"""{"head": "c", "relation": "r", "tail": "d", "payload": {"blob": "{{{new string('x', (1 << 20) + 1)}}}"}}""",
            """{"head": "e", "relation": "r", "tail": "f"}""",
        ]);
        string triples = Path.Combine(_folder, "odd.nt");
        await File.WriteAllLinesAsync(triples,
        [
            """<g> <r> "\U80000000" .""",
            """<h> <r> <i> .""",
        ]);
        string rejects = Path.Combine(_folder, "odd-rejects.txt");

        (int code, string output, string error) = await RunAsync("ingest", json, triples, "-c", collection, "--rejects", rejects);

        Assert.True(code == 0, error);
        string[] rejected = File.ReadAllLines(rejects);
        Assert.Equal([$"{json}:2", $"{json}:3", $"{triples}:1"], rejected.Select(line => line.Split('\t')[0]));
        Assert.Contains("payload holds 1048581 bytes of keys and values; the limit is 1048576", rejected[1], StringComparison.Ordinal);
        Assert.Equal((3L, 3L), (Counted(output, "stored"), Counted(output, "rejected")));
        Assert.Equal(3, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    // Without --session a rerun resumes only the same input. A .npy's names file is part of it: the
    // same rows under other names are new concepts, not items an earlier run made durable.
    [Fact]
    public async Task The_derived_session_tells_names_files_apart()
    {
        string collection = await NewCollectionAsync();
        string npy = Path.Combine(_folder, "emb.npy");
        await File.WriteAllBytesAsync(npy, IngestReaderTests.Npy("<f4", [[.. Enumerable.Repeat(1f, 8)], [.. Enumerable.Repeat(2f, 8)]]));
        string first = Path.Combine(_folder, "first.names"), second = Path.Combine(_folder, "second.names");
        await File.WriteAllLinesAsync(first, ["a", "b"]);
        await File.WriteAllLinesAsync(second, ["c", "d"]);

        Assert.Equal(0, (await RunAsync("ingest", npy, "-c", collection, "--names", first)).Code);
        (int code, string output, string error) = await RunAsync("ingest", npy, "-c", collection, "--names", second);

        Assert.True(code == 0, error);
        Assert.Equal((2L, 0L), (Counted(output, "stored"), Counted(output, "resumed")));
        Assert.Equal(4, (await fixture.Client.DescribeCollectionAsync(collection)).ConceptCount);
    }

    // Rejected lines take numbers too. A client that numbered differently began this session:
    // one that sent lines today's client rejects (as 0a97e8d's did with empty metadata keys) had
    // made lines 1 to 6 durable under sequence 5. Numbering only the items it sends, today's
    // client took that mark for its first six good lines and skipped the unstored line 8.
    [Fact]
    public async Task A_session_begun_by_a_client_that_numbered_every_line_resumes_without_a_gap()
    {
        string collection = await NewCollectionAsync();
        string file = WriteFacts("earlier.tsv");
        await BeginSessionAsync(collection, "earlier", 5, new IngestRequest { Facts = { FactOf("a", "b"), FactOf("c", "d"), FactOf("f", "g") } });

        (int code, string output, string error) = await RunAsync("ingest", file, "-c", collection, "--session", "earlier");

        Assert.True(code == 0, error);
        Assert.Equal((1L, 3L), (Counted(output, "stored"), Counted(output, "resumed")));
        Assert.Equal(4, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
        Assert.Equal("j", Assert.Single((await fixture.Client.NeighborsAsync(collection, "i")).Edges).Other);
    }

    // A JSON-lines fact with a vector is two items when stored, one when rejected, so numbers still
    // depended on the client's checks: a client that sent such a line (as one did before its
    // vector's norm was checked) made items 0 to 2 durable, and today's client, numbering the line
    // once, took that mark for line 3 and skipped it, silently, exit 0.
    [Fact]
    public async Task A_line_rejected_today_that_an_earlier_client_sent_keeps_its_numbers()
    {
        string collection = await NewCollectionAsync();
        string file = WriteLines("vectors.jsonl", [HugeVectorFact, FactLine("c", "d"), FactLine("e", "f")]);
        await BeginSessionAsync(collection, "vectors", 2, new IngestRequest { Facts = { FactOf("a", "b"), FactOf("c", "d") } });

        (int code, string output, string error) = await RunAsync("ingest", file, "-c", collection, "--session", "vectors");

        Assert.True(code == 0, error);
        Assert.Equal((1L, 1L, 1L), (Counted(output, "stored"), Counted(output, "resumed"), Counted(output, "rejected")));
        Assert.Equal("f", Assert.Single((await fixture.Client.NeighborsAsync(collection, "e")).Edges).Other);
        Assert.Equal(3, await fixture.Client.GetIngestProgressAsync(collection, "vectors"));
    }

    // A rejected line's numbers can straddle the session's mark: the batch ends with the items
    // before it, answered as already applied, rather than running on to be written again whole.
    [Fact]
    public async Task A_batch_ends_at_the_mark_inside_a_rejected_lines_numbers()
    {
        string collection = await NewCollectionAsync();
        string file = WriteLines("straddle.jsonl", ["{\"name\":\"e\"}", HugeVectorFact, FactLine("g", "h")]);
        await BeginSessionAsync(collection, "straddle", 1, new IngestRequest { Concepts = { new ConceptInput { Name = "e" } } });

        (int code, string output, string error) = await RunAsync("ingest", file, "-c", collection, "--session", "straddle");

        Assert.True(code == 0, error);
        Assert.Equal((1L, 1L, 1L), (Counted(output, "stored"), Counted(output, "resumed"), Counted(output, "rejected")));
    }

    /// <summary>A fact line whose head vector's norm the server refuses (and today's client rejects).</summary>
    private const string HugeVectorFact = "{\"head\":\"a\",\"relation\":\"r\",\"tail\":\"b\",\"head_vector\":[1e19,0,0,0,0,0,0,0]}";

    private static string FactLine(string head, string tail) => $"{{\"head\":\"{head}\",\"relation\":\"r\",\"tail\":\"{tail}\"}}";

    private static FactInput FactOf(string head, string tail) => new() { Head = head, Relation = "r", Tail = tail };

    private string WriteLines(string name, string[] lines)
    {
        string path = Path.Combine(_folder, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>Makes <paramref name="request"/> durable as an earlier client of the session would
    /// have, under <paramref name="sequence"/>.</summary>
    private async Task BeginSessionAsync(string collection, string session, long sequence, IngestRequest request)
    {
        request.Collection = collection;
        request.Session = session;
        request.Sequence = sequence;
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> call = fixture.Client.Ingest.Ingest();
        await call.RequestStream.WriteAsync(request);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        await call.RequestStream.CompleteAsync();
    }

    [Fact]
    public async Task Usage_and_input_errors_have_their_own_codes()
    {
        string collection = await NewCollectionAsync();
        Assert.Equal(1, (await RunAsync("ingest", WriteFacts("a.dat"), "-c", collection)).Code);
        Assert.Equal(1, (await RunAsync("ingest", WriteFacts("b.tsv"), "-c", collection, "--format", "xml")).Code);
        Assert.Equal(4, (await RunAsync("ingest", Path.Combine(_folder, "missing.tsv"), "-c", collection)).Code);
        Assert.Equal(3, (await RunAsync("ingest", WriteFacts("c.tsv"), "-c", "no-such-collection")).Code);
    }

    // --rejects naming an input emptied it as the run began (the file, or a .npy input's names), and
    // the run then stored nothing and exited 0: by its path, a link to it, or a path through a
    // linked folder.
    [Fact]
    public async Task A_rejects_file_that_is_an_input_is_refused_and_the_input_kept()
    {
        string collection = await NewCollectionAsync();
        string facts = WriteFacts("kept.tsv");
        byte[] before = await File.ReadAllBytesAsync(facts);
        string link = Path.Combine(_folder, "link-to-kept.tsv");
        File.CreateSymbolicLink(link, facts);
        string folderLink = Path.Combine(_folder, "link-to-folder");
        Directory.CreateSymbolicLink(folderLink, _folder);

        foreach (string rejects in new[] { facts, link, Path.Combine(folderLink, "kept.tsv") })
        {
            (int code, _, string error) = await RunAsync("ingest", facts, "-c", collection, "--rejects", rejects);
            Assert.True(code == 1, error);
            Assert.Contains($"is the input {facts}", error, StringComparison.Ordinal);
        }

        Assert.Equal(before, await File.ReadAllBytesAsync(facts));
        Assert.Equal(0, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    // A rejects file that could not be written (a full disk) failed the run as "reading facts.tsv"
    // (exit 4, blaming the input) when a rejected line was written, or, with few rejects, at the
    // close after the summary: a stack trace and exit 1.
    [Fact]
    public async Task A_rejects_file_that_cannot_be_written_fails_the_run_saying_so()
    {
        string collection = await NewCollectionAsync();
        (int code, _, string error) = await RunAsync("ingest", WriteFacts("full.tsv"), "-c", collection, "--rejects", "/dev/full");

        Assert.True(code == 4, error);
        Assert.Contains("error: writing --rejects /dev/full: ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("reading", error, StringComparison.Ordinal);
    }

    // Reading a pipe (/dev/stdin, a FIFO) to its end asked it for its length, which it has none
    // of: the last batch was lost and the run failed with exit 4, "does not support seeking".
    [Fact]
    public async Task A_pipe_is_read_to_its_end()
    {
        string collection = await NewCollectionAsync();
        string fifo = Path.Combine(_folder, "facts.fifo");
        using (Process mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        // Opening a FIFO for writing waits for its reader, the run below.
        Task writer = Task.Run(() => File.WriteAllLines(fifo, Enumerable.Range(0, 5).Select(i => $"h{i}\tr\tt{i}")));
        (int code, string output, string error) = await RunAsync("ingest", fifo, "--format", "tsv", "-c", collection, "--batch", "2");
        Assert.True(code == 0, error);
        await writer.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(5L, Counted(output, "stored"));
        Assert.Equal(5, (await fixture.Client.DescribeCollectionAsync(collection)).FactCount);
    }

    private string WriteFacts(string name)
    {
        string path = Path.Combine(_folder, name);
        var content = new List<byte>();
        content.AddRange(Encoding.UTF8.GetBytes("a\tr\tb\nmissing\tfields\nc\tr\td\t1\n"));
        content.AddRange([.. "bad\tr\t"u8, 0xC3, 0x28, .. "\n"u8]);
        content.AddRange(Encoding.UTF8.GetBytes($"e\tr\tf\tNaN\nf\tr\tg\t2.5\nh\tr\t{new string('é', 550)}\ni\tr\tj\n"));
        File.WriteAllBytes(path, [.. content]);
        return path;
    }

    /// <summary>One count from the run's JSON summary.</summary>
    private static long Counted(string output, string field)
    {
        using JsonDocument summary = JsonDocument.Parse(output);
        return summary.RootElement.GetProperty(field).GetInt64();
    }

    private async Task<string> NewCollectionAsync()
    {
        string collection = ServerFixture.NewCollection("malformed");
        await fixture.Client.CreateCollectionAsync(collection, 8);
        return collection;
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync([.. args, "--json", "--no-progress", "--server", fixture.Server.Address], output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>A server whose batch limit (100) is below the CLI's --batch 200.</summary>
    public sealed class LimitedServer : ServerFixture
    {
        protected override string[] Args => ["--AssocDB:Limits:MaxBatch=100"];
    }
}
