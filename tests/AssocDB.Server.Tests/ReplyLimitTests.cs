using System.Globalization;
using System.Text.Json;
using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests;

/// <summary>A server whose replies are at most 4 KiB, shared by <see cref="ReplyLimitTests"/>.</summary>
public sealed class SmallReplyServerFixture : ServerFixture
{
    public const int MaxMessageBytes = 4096;

    protected override string[] Args => [$"--AssocDB:Limits:MaxMessageBytes={MaxMessageBytes}", "--AssocDB:Limits:MaxResults=100"];
}

/// <summary>
/// Listings whose items are large come back in pages cut to the server's message limit instead of
/// failing whole, and a write whose reply passes the limit is still answered: it has happened.
/// </summary>
public sealed class ReplyLimitTests(SmallReplyServerFixture fixture) : IClassFixture<SmallReplyServerFixture>
{
    private const int Limit = SmallReplyServerFixture.MaxMessageBytes;
    private readonly AssocDbClient _client = fixture.Client;

    [Fact]
    public async Task Relations_are_listed_in_id_order_in_pages_cut_to_the_message_limit()
    {
        // 64-float vectors (~270 bytes a relation): 30 relations are ~8 KiB, two limits' worth.
        string c = await NewCollectionAsync(64);
        string[] names = [.. Enumerable.Range(0, 30).Select(i => $"relation-{i:00}")];
        foreach (string name in names)
        {
            await _client.DefineRelationAsync(c, name, vector: Enumerable.Repeat(0.5f, 64));
        }

        List<ListRelationsResponse> pages = await ReadPagesAsync(token => _client.Relations.ListRelationsAsync(
            new ListRelationsRequest { Collection = c, PageToken = token }).ResponseAsync, page => page.NextPageToken);

        Assert.True(pages.Count >= 2, $"{pages.Count} page(s)");
        Assert.All(pages, page => Assert.InRange(page.CalculateSize(), 1, Limit));
        Assert.Equal(names, pages.SelectMany(page => page.Relations).Select(r => r.Name));
        Assert.Equal(names, (await _client.ListRelationsAsync(c)).Select(r => r.Name));

        // A count limit pages too, and the token reads on after the last relation returned.
        var first = await _client.Relations.ListRelationsAsync(new ListRelationsRequest { Collection = c, Limit = 2 });
        var second = await _client.Relations.ListRelationsAsync(new ListRelationsRequest { Collection = c, Limit = 2, PageToken = first.NextPageToken });
        Assert.Equal(names[..4], first.Relations.Concat(second.Relations).Select(r => r.Name));

        // The last relation's token, and any past it, read an empty last page.
        foreach (string pastTheEnd in new[] { "29", "30", int.MaxValue.ToString(CultureInfo.InvariantCulture) })
        {
            var last = await _client.Relations.ListRelationsAsync(new ListRelationsRequest { Collection = c, PageToken = pastTheEnd });
            Assert.Equal((0, ""), (last.Relations.Count, last.NextPageToken));
        }

        var tail = await _client.Relations.ListRelationsAsync(new ListRelationsRequest { Collection = c, Limit = 5, PageToken = "26" });
        Assert.Equal(names[27..], tail.Relations.Select(r => r.Name));
        Assert.Equal("", tail.NextPageToken);
    }

    [Theory]
    [InlineData("next", 0, "page_token")]
    [InlineData("-3", 0, "page_token")]
    [InlineData("", 101, "limit")]
    public async Task Relation_listing_outside_its_bounds_is_refused_naming_the_field(string token, int limit, string field)
    {
        string c = await NewCollectionAsync(4);
        var request = new ListRelationsRequest { Collection = c, PageToken = token };
        if (limit != 0)
        {
            request.Limit = limit;
        }

        var e = await Assert.ThrowsAsync<RpcException>(() => _client.Relations.ListRelationsAsync(request).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, field), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
    }

    [Fact]
    public async Task Neighbor_pages_end_where_the_message_limit_does_and_read_every_edge_once()
    {
        string c = await NewCollectionAsync(4);
        string payload = new('p', 700);
        string[] tails = [.. Enumerable.Range(0, 12).Select(i => $"t{i:00}")];
        foreach (string tail in tails)
        {
            await _client.AddFactsAsync(c, [new FactInput { Head = "hub", Relation = "r", Tail = tail, Payload = { ["note"] = payload } }]);
        }

        List<NeighborsResponse> pages = await ReadPagesAsync(token => _client.NeighborsAsync(c, "hub", pageToken: token), page => page.NextPageToken);

        Assert.True(pages.Count >= 2, $"{pages.Count} page(s)");
        Assert.All(pages, page => Assert.InRange(page.CalculateSize(), 1, Limit));
        Assert.Equal(tails, pages.SelectMany(page => page.Edges).Select(edge => edge.Other));
        Assert.Equal(tails, (await _client.AllNeighborsAsync(c, "hub").CollectAsync()).Select(edge => edge.Other));
    }

    [Fact]
    public async Task Related_answers_cut_to_the_message_limit_are_marked_truncated()
    {
        string c = await NewCollectionAsync(4);
        string[] tails = [.. Enumerable.Range(0, 12).Select(i => $"{i:00}-" + new string('t', 400))];
        foreach (string tail in tails)
        {
            await _client.AddFactAsync(c, "hub", "r", tail);
        }

        // The count limit (100 here) would keep all 12.
        RelatedResponse answers = await _client.RelatedAsync(c, "hub", "r");

        Assert.True(answers.Truncated);
        Assert.InRange(answers.Answers.Count, 1, tails.Length - 1);
        Assert.InRange(answers.CalculateSize(), 1, Limit);
        Assert.Subset(tails.ToHashSet(), answers.Answers.Select(a => a.Concept).ToHashSet());
    }

    [Fact]
    public async Task A_relation_definition_whose_reply_passes_the_limit_is_applied_and_answered()
    {
        // 40 learned composition rules over long relation names make the relation ~12 KiB, three
        // times the limit, although each request stays within it.
        string c = await NewCollectionAsync(4);
        string[] parts = [.. Enumerable.Range(0, 7).Select(i => $"part-{i}-" + new string('x', 40))];
        foreach (string name in parts.Append("whole"))
        {
            await _client.DefineRelationAsync(c, name);
        }

        LearnedProperty[] rules =
        [
            .. parts.SelectMany(first => parts.Select(second => new LearnedProperty
            {
                Kind = PropertyKind.Composition,
                Relation = "whole",
                First = first,
                Second = second,
                Statistics = new RuleStatistics { Support = 5, BodySize = 10, Confidence = 0.5, PcaConfidence = 0.8, HeadCoverage = 0.5 },
            })).Take(40),
        ];
        foreach (LearnedProperty[] chunk in rules.Chunk(10))
        {
            await _client.ApplyLearnedPropertiesAsync(c, chunk);
        }

        RelationInfo defined = await _client.DefineRelationAsync(c, "whole", symmetric: true);

        Assert.True(defined.Symmetric);
        Assert.Equal(40, defined.Learned.Count);
        Assert.True(defined.CalculateSize() > Limit, $"{defined.CalculateSize()} bytes");
        // Reading it whole is refused saying why; the symmetry is in force all the same.
        var e = await Assert.ThrowsAsync<AssocDbException>(() => _client.GetRelationAsync(c, "whole"));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("Limits:MaxMessageBytes", e.Message, StringComparison.Ordinal);
        await _client.AddFactAsync(c, "a", "whole", "b");
        Assert.Equal(["a"], (await _client.RelatedAsync(c, "b", "whole")).Answers.Select(a => a.Concept));
    }

    // A search reply over the limit was refused whole, although each query's best hits would have
    // fit: it is now cut to the same number of best hits per query, marked truncated, as related
    // answers are; only a reply that cannot hold one hit per query is refused.
    [Fact]
    public async Task Search_hits_cut_to_the_message_limit_keep_each_querys_best_and_are_marked_truncated()
    {
        // 60 concepts with ~110-byte hits: 3 queries × k = 50 are ~16 KiB, four times the limit.
        var random = new Random(3);
        string c = await LongNamedConceptsAsync(random);
        SearchQuery[] queries = [.. Enumerable.Range(0, 3).Select(_ => new SearchQuery { Vector = RandomVector(random) })];

        SearchResponse cut = await _client.Query.SearchAsync(new SearchRequest { Collection = c, Queries = { queries }, K = 50 });

        Assert.True(cut.Truncated);
        Assert.InRange(cut.CalculateSize(), 1, Limit);
        int kept = cut.Results[0].Hits.Count;
        Assert.InRange(kept, 1, 49);
        Assert.All(cut.Results, result => Assert.Equal(kept, result.Hits.Count));
        // Each query's best hits, as a search for that many returns them, unmarked; and the most
        // that fit: a search for one more is cut to as many.
        SearchResponse whole = await _client.Query.SearchAsync(new SearchRequest { Collection = c, Queries = { queries }, K = kept });
        Assert.False(whole.Truncated);
        Assert.Equal(whole.Results, cut.Results);
        SearchResponse more = await _client.Query.SearchAsync(new SearchRequest { Collection = c, Queries = { queries }, K = kept + 1 });
        Assert.True(more.Truncated);
        Assert.Equal(cut.Results, more.Results);

        // Queries for more hits than any reply could hold (41 at 5 bytes a hit, the least one
        // takes, for 20 queries): the same best hits, the same number for each, and truncated.
        SearchQuery[] twenty = [.. Enumerable.Range(0, 20).Select(_ => new SearchQuery { Vector = RandomVector(random) })];
        SearchResponse past = await _client.Query.SearchAsync(new SearchRequest { Collection = c, Queries = { twenty }, K = 60 });
        Assert.True(past.Truncated);
        int pastKept = past.Results[0].Hits.Count;
        Assert.All(past.Results, result => Assert.Equal(pastKept, result.Hits.Count));
        Assert.Equal((await _client.Query.SearchAsync(new SearchRequest { Collection = c, Queries = { twenty }, K = pastKept })).Results, past.Results);

        // Not even one hit per query fits: refused, saying how large the reply would be.
        SearchQuery[] many = [.. Enumerable.Range(0, 40).Select(_ => new SearchQuery { Vector = RandomVector(random) })];
        var e = await Assert.ThrowsAsync<RpcException>(() => _client.Query.SearchAsync(new SearchRequest { Collection = c, Queries = { many }, K = 1 }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("the Search reply would be", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Limits:MaxMessageBytes", e.Status.Detail, StringComparison.Ordinal);
    }

    // The client's search results and the tool's output did not say when the server had cut a search
    // reply to its message limit (SearchResponse.truncated): fewer hits than asked for read as all
    // there were.
    [Fact]
    public async Task Search_cut_to_the_message_limit_is_marked_so_by_the_client_and_the_tool()
    {
        var random = new Random(5);
        string c = await LongNamedConceptsAsync(random);
        SearchQuery[] queries = [.. Enumerable.Range(0, 3).Select(_ => new SearchQuery { Vector = RandomVector(random) })];

        ReplyList<IReadOnlyList<SearchHit>> cut = await _client.SearchAsync(c, queries, 50);
        Assert.True(cut.Truncated);
        Assert.InRange(cut[0].Count, 1, 49);
        Assert.False((await _client.SearchAsync(c, queries, cut[0].Count)).Truncated);
        ReplyList<SearchHit> one = await _client.SearchAsync(c, queries[0], 60);
        Assert.True(one.Truncated);
        Assert.InRange(one.Count, 1, 59);
        Assert.False((await _client.SearchAsync(c, queries[0], one.Count)).Truncated);

        string vector = string.Join(',', queries[0].Vector.Values.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        string table = await ToolAsync("search", "-c", c, "--vector", vector, "-k", "60");
        Assert.Contains($"(fewer hits than asked for: the reply was cut to the server's message size limit, keeping the best {one.Count}; ask for a smaller -k)", table, StringComparison.Ordinal);
        Assert.DoesNotContain("fewer hits", await ToolAsync("search", "-c", c, "--vector", vector, "-k", $"{one.Count}"), StringComparison.Ordinal);
        using JsonDocument json = JsonDocument.Parse(await ToolAsync("search", "-c", c, "--vector", vector, "-k", "60", "--json"));
        Assert.True(json.RootElement.GetProperty("truncated").GetBoolean());
        Assert.Equal(one.Select(h => h.Concept), json.RootElement.GetProperty("results")[0].GetProperty("hits").EnumerateArray().Select(h => h.GetProperty("concept").GetString()));
    }

    // GetJob sent a mining result's accepted rules whole, so a large graph's result (FB15k-237's
    // accepts thousands) could pass the message limit, and GetJob was then refused
    // RESOURCE_EXHAUSTED for as long as the server kept the job: the rules could not be read or
    // shown. The reply now keeps the best rules that fit, marked truncated with their full count,
    // ListMinedProperties reads them all a page at a time, and the client and the tool show all.
    [Fact]
    public async Task Mining_result_past_the_message_limit_is_cut_and_read_whole_in_pages()
    {
        // Four relations and their four inverses over the same ten pairs, with long names: every
        // forward relation is the inverse of every backward one and back, 32 rules of ~200 bytes.
        string c = await NewCollectionAsync(4);
        string Name(string way, int k) => $"{way}-{k}-" + new string('r', 40);
        FactInput[] facts =
        [
            .. Enumerable.Range(0, 4).SelectMany(k => Enumerable.Range(0, 10).SelectMany(n => new[]
            {
                new FactInput { Head = $"x{n}", Relation = Name("forward", k), Tail = $"y{n}" },
                new FactInput { Head = $"y{n}", Relation = Name("backward", k), Tail = $"x{n}" },
            })),
        ];
        foreach (FactInput[] chunk in facts.Chunk(20))
        {
            await _client.AddFactsAsync(c, chunk);
        }

        string id = (await _client.MineAsync(new MineRequest { Collection = c })).Id;
        await _client.WatchJobAsync(id).CollectAsync();

        GetJobResponse reply = await _client.Learning.GetJobAsync(new GetJobRequest { Id = id });
        MiningReport cut = reply.Job.Mining;
        Assert.True(cut.Truncated);
        Assert.Equal(32, cut.AcceptedCount);
        Assert.InRange(cut.Accepted.Count, 1, 31);
        Assert.InRange(reply.CalculateSize(), 1, Limit);
        CancelJobResponse cancelled = await _client.Learning.CancelJobAsync(new CancelJobRequest { Id = id });
        Assert.True(cancelled.Job.Mining.Truncated);
        Assert.Equal(cut.Accepted, cancelled.Job.Mining.Accepted);

        List<ListMinedPropertiesResponse> pages = await ReadPagesAsync(token => _client.Learning.ListMinedPropertiesAsync(
            new ListMinedPropertiesRequest { JobId = id, PageToken = token }).ResponseAsync, page => page.NextPageToken);
        Assert.True(pages.Count >= 2, $"{pages.Count} page(s)");
        Assert.All(pages, page => Assert.InRange(page.CalculateSize(), 1, Limit));
        List<LearnedProperty> all = [.. pages.SelectMany(page => page.Properties)];
        Assert.Equal(32, all.Count);
        Assert.Equal(32, all.Select(p => p.Rule).Distinct().Count());
        Assert.Equal(cut.Accepted, all.Take(cut.Accepted.Count));
        var first = await _client.Learning.ListMinedPropertiesAsync(new ListMinedPropertiesRequest { JobId = id, Limit = 2 });
        var second = await _client.Learning.ListMinedPropertiesAsync(new ListMinedPropertiesRequest { JobId = id, Limit = 2, PageToken = first.NextPageToken });
        Assert.Equal(all[..4], first.Properties.Concat(second.Properties));

        Job whole = await _client.GetJobAsync(id);
        Assert.False(whole.Mining.Truncated);
        Assert.Equal(all, whole.Mining.Accepted);
        string shown = await ToolAsync("jobs", "get", id);
        Assert.All(all, p => Assert.Contains(p.Rule, shown, StringComparison.Ordinal));
        string cancelShown = await ToolAsync("jobs", "cancel", id);
        Assert.Contains($"(the best {cut.Accepted.Count} of 32 accepted rules, cut to the server's limits: `assocdb jobs get {id}` lists every one it keeps)", cancelShown, StringComparison.Ordinal);
        // Applying by the job's id takes every rule, not only those its reply held.
        Assert.Equal(32, await _client.ApplyLearnedPropertiesAsync(c, id));

        // Only a succeeded mine job has rules to list.
        string training = (await _client.LearnAsync(new LearnRequest { Collection = c, MaxEpochs = 1, Model = EmbeddingModel.Transe })).Id;
        var e = await Assert.ThrowsAsync<RpcException>(() => _client.Learning.ListMinedPropertiesAsync(new ListMinedPropertiesRequest { JobId = training }).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "job_id"), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
        await _client.WaitForJobAsync(training);
        foreach (string pastTheEnd in new[] { "32", "40", int.MaxValue.ToString(CultureInfo.InvariantCulture) })
        {
            e = await Assert.ThrowsAsync<RpcException>(() => _client.Learning.ListMinedPropertiesAsync(new ListMinedPropertiesRequest { JobId = id, PageToken = pastTheEnd }).ResponseAsync);
            Assert.Equal((StatusCode.InvalidArgument, "page_token"), (e.StatusCode, e.Trailers.GetValue("assocdb-field")));
            Assert.Contains($"reads on after property {pastTheEnd}, but the job accepted 32", e.Status.Detail, StringComparison.Ordinal);
        }

        // The last rule's token reads an empty last page.
        Assert.Empty((await _client.Learning.ListMinedPropertiesAsync(new ListMinedPropertiesRequest { JobId = id, PageToken = "31" })).Properties);
    }

    // An evaluation's test facts go in one request, and one past the server's message limit was
    // refused by its gRPC layer with "Received message exceeds the maximum configured message size",
    // which named neither the test set nor the setting to raise.
    [Fact]
    public async Task Test_set_past_the_message_limit_is_refused_naming_its_size_and_the_limit()
    {
        string c = await NewCollectionAsync(4);
        FactKey[] test = [.. Enumerable.Range(0, 200).Select(i => new FactKey { Head = $"head-{i}", Relation = "relation", Tail = $"tail-{i}" })];

        var e = await Assert.ThrowsAsync<AssocDbException>(() => _client.EvaluateAsync(c, test));

        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.StartsWith("the test set (200 facts, ", e.Message, StringComparison.Ordinal);
        Assert.Contains("Limits:MaxMessageBytes", e.Message, StringComparison.Ordinal);
        Assert.Empty(await _client.ListJobsAsync(c));
    }

    private static Vector RandomVector(Random random) => new() { Values = { Enumerable.Range(0, 4).Select(_ => (float)random.NextDouble() - 0.5f) } };

    /// <summary>A collection of 60 concepts with ~100-byte names and random 4-float vectors.</summary>
    private async Task<string> LongNamedConceptsAsync(Random random)
    {
        string c = await NewCollectionAsync(4);
        foreach (int[] batch in Enumerable.Range(0, 60).Chunk(10))
        {
            await _client.UpsertConceptsAsync(c, batch.Select(i => new ConceptInput { Name = $"{i:00}-" + new string('n', 100), Vector = RandomVector(random) }));
        }

        return c;
    }

    /// <summary>What the tool prints, which must succeed.</summary>
    private async Task<string> ToolAsync(params string[] args)
    {
        (int code, string output, string error) = await AssocDbTool.RunAsync([.. args, "--server", fixture.Server.Address]);
        Assert.True(code == 0, $"assocdb {string.Join(' ', args)} exited {code}: {error}");
        return output;
    }

    // A rejection takes more bytes than the smallest invalid item, so an acknowledgement could pass
    // the limit that its batch kept within. Sending it failed the stream after the batch was
    // durable, and the resend's acknowledgement lists the same rejections: the ingest never moved on.
    [Fact]
    public async Task An_ingest_acknowledgement_lists_the_rejections_that_fit_and_counts_the_rest()
    {
        string c = await NewCollectionAsync(4);
        const int Invalid = 300;
        var request = new IngestRequest { Collection = c, Session = "s", Sequence = 0 };
        request.Facts.AddRange(Enumerable.Range(0, Invalid).Select(i => new FactInput { Head = "", Relation = "r", Tail = $"t{i}" }));
        request.Facts.Add(new FactInput { Head = "h", Relation = "r", Tail = "valid" });
        Assert.InRange(request.CalculateSize(), 1, Limit);

        foreach (bool resent in new[] { false, true })
        {
            using AsyncDuplexStreamingCall<IngestRequest, IngestAck> stream = _client.Ingest.Ingest();
            await stream.RequestStream.WriteAsync(request);
            await stream.RequestStream.CompleteAsync();
            Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
            IngestAck ack = stream.ResponseStream.Current;
            Assert.False(await stream.ResponseStream.MoveNext(CancellationToken.None));

            Assert.Equal(resent, ack.AlreadyApplied);
            Assert.InRange(ack.CalculateSize(), 1, Limit);
            Assert.InRange(ack.Rejected.Count, 1, Invalid - 1);
            Assert.Equal(Invalid, ack.Rejected.Count + ack.UnlistedRejections);
            Assert.Equal(Enumerable.Range(0, ack.Rejected.Count).Select(i => $"facts[{i}].head"), ack.Rejected.Select(r => r.Field));
            Assert.Equal(resent ? (0, 1) : (1, 0), (ack.Facts.Applied, ack.Facts.Unchanged));
        }

        Assert.Equal(0, await _client.GetIngestProgressAsync(c, "s"));
        Assert.Single(await _client.AllNeighborsAsync(c, "h").CollectAsync());
    }

    // The bulk ingester counts the rejections an acknowledgement leaves unlisted, and reports them
    // once, at the batch's first line, saying why.
    [Fact]
    public async Task The_bulk_ingester_counts_rejections_its_acknowledgement_left_unlisted()
    {
        string c = await NewCollectionAsync(4);
        const int Invalid = 200;
        // An empty payload key passes the client's checks; the server refuses the fact.
        List<IngestItem> items = [.. Enumerable.Range(1, Invalid).Select(line => new FactItem("input", line, new FactInput { Head = "h", Relation = "r", Tail = $"t{line}", Payload = { [""] = "x" } }))];
        items.Add(new FactItem("input", Invalid + 1, new FactInput { Head = "h", Relation = "r", Tail = "valid" }));
        var reported = new List<RejectedItem>();

        IngestCounts counts = await new BulkIngester(_client, new BulkIngestOptions { Collection = c, Session = "s", BatchSize = 1000 }).RunAsync(items, reported.Add);

        Assert.Equal((1L, (long)Invalid, 1L, 1L), (counts.Batches, counts.Rejected, counts.Stored, counts.Facts));
        Assert.InRange(reported.Count - 1, 1, Invalid - 1);
        RejectedItem unlisted = reported[^1];
        Assert.Equal(("input", 1L), (unlisted.Source, unlisted.Line));
        Assert.Contains($"{Invalid - (reported.Count - 1)} items of the batch that starts at this line, past the {reported.Count - 1} listed", unlisted.Reason, StringComparison.Ordinal);
        Assert.Equal(Enumerable.Range(1, reported.Count - 1).Select(line => (long)line), reported[..^1].Select(item => item.Line));
    }

    private async Task<string> NewCollectionAsync(int dimension)
    {
        string name = ServerFixture.NewCollection("replies");
        await _client.CreateCollectionAsync(name, dimension);
        return name;
    }

    /// <summary>Every page of a listing, from the first, following the token each reply gives.</summary>
    private static async Task<List<T>> ReadPagesAsync<T>(Func<string, Task<T>> read, Func<T, string> next)
    {
        var pages = new List<T>();
        string token = "";
        do
        {
            T page = await read(token);
            pages.Add(page);
            token = next(page);
        }
        while (token.Length > 0 && pages.Count < 100);

        return pages;
    }
}
