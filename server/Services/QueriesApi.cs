using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using AssocDB.Server.Search;
using Grpc.Core;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.QueryService: validate → engine → map. Searches go through the
/// <see cref="SearchBatcher"/>, which coalesces concurrent calls.</summary>
[BindServiceMethod(typeof(QueryServiceBinding), nameof(QueryServiceBinding.BindService))]
internal sealed class QueriesApi(DatabaseHost host, RequestLimits limits, ReplyBudget budget, SearchBatcher batcher) : QueryService.QueryServiceBase
{
    private const int DefaultSearchK = 10;
    private const int DefaultRelateK = 5;
    private const int DefaultRecallK = 10;
    private const float DefaultBeta = 32f;

    /// <summary>Room kept for the truncated flag (tag and value) when a reply's answers are cut to size.</summary>
    private const int TruncatedFlagBytes = 2;

    public override Task<RelatedResponse> Related(RelatedRequest request, ServerCallContext context)
    {
        var options = new E.RelatedOptions(
            limits.Depth(request.HasMaxDepth, request.MaxDepth), limits.Results(request.HasLimit, request.Limit));
        var answers = host.Collection(request.Collection).Related(request.Concept, request.Relation, options, context.CancellationToken).Unwrap();
        var response = new RelatedResponse();
        int kept = budget.Fill(response, response.Answers, RelatedResponse.AnswersFieldNumber, answers.Select(a => a.ToProto()), reserved: TruncatedFlagBytes);
        response.Truncated = answers.Truncated || kept < answers.Count;
        return Task.FromResult(response);
    }

    public override Task<NeighborsResponse> Neighbors(NeighborsRequest request, ServerCallContext context)
    {
        int limit = limits.Results(request.HasLimit, request.Limit);
        var page = host.Collection(request.Collection)
            .Neighbors(request.Concept, request.HasRelation ? request.Relation : null, limit, PageTokens.After(request.PageToken, "edge")).Unwrap();
        var response = new NeighborsResponse();
        int kept = budget.Fill(response, response.Edges, NeighborsResponse.EdgesFieldNumber, page.Select(e => e.ToProto()), reserved: PageTokens.Bytes);
        response.NextPageToken = kept == 0 ? "" : PageTokens.Of(page.NextAfter(kept));
        return Task.FromResult(response);
    }

    public override async Task<SearchResponse> Search(SearchRequest request, ServerCallContext context)
    {
        limits.Batch(request.Queries.Count, "queries");
        // 10,000 queries for 1,000 hits each asked the engine for 10 M hits, made a message of each,
        // and sent at most the 3.3 M that 16 MiB can hold. One more than can fit still shows
        // whether a query had more (truncated); the hits kept are the same.
        int k = Math.Min(limits.K(request.HasK, request.K, DefaultSearchK), budget.MostHitsPerQuery(request.Queries.Count) + 1);
        var collection = host.Collection(request.Collection);
        var options = new E.SearchOptions(
            k, !request.IncludeQueryConcepts,
            request.MetadataFilter.Count > 0 ? new Dictionary<string, string>(request.MetadataFilter) : null);
        var results = (await batcher.SearchAsync(collection, request.Queries.Select(q => q.ToEngine()).ToList(), options, context.CancellationToken)).Unwrap();
        SearchHit[][] hits = [.. results.Select(result => result.Select(h => h.ToProto()).ToArray())];
        int kept = budget.HitsThatFit(hits, TruncatedFlagBytes, out long bytes)
            ?? throw GrpcErrors.ReplyTooLarge(context.Method, bytes, budget.Limit);
        var response = new SearchResponse();
        foreach (SearchHit[] best in hits)
        {
            var result = new SearchResult();
            result.Hits.AddRange(best.Length > kept ? best[..kept] : best);
            response.Results.Add(result);
            response.Truncated |= best.Length > kept;
        }

        return response;
    }

    public override Task<RelateResponse> Relate(RelateRequest request, ServerCallContext context)
    {
        int k = limits.K(request.HasK, request.K, DefaultRelateK);
        var options = new E.RelatedOptions(limits.Depth(request.HasMaxDepth, request.MaxDepth));
        RelateResponse response = host.Collection(request.Collection).Relate(request.A, request.B, k, options, context.CancellationToken).Unwrap().ToProto();
        var graph = response.Graph.ToList();
        response.Graph.Clear();
        int kept = budget.Fill(response, response.Graph, RelateResponse.GraphFieldNumber, graph, reserved: TruncatedFlagBytes);
        response.Truncated |= kept < graph.Count;
        return Task.FromResult(response);
    }

    public override Task<RecallResponse> Recall(RecallRequest request, ServerCallContext context)
    {
        var query = new E.RecallQuery(
            request.Relation,
            request.InputCase == RecallRequest.InputOneofCase.Vector ? request.Vector.Values.ToArray() : null,
            request.InputCase == RecallRequest.InputOneofCase.Concept ? request.Concept : null,
            request.Direction.ToEngine(),
            request.HasBeta ? request.Beta : DefaultBeta,
            limits.K(request.HasK, request.K, DefaultRecallK));
        var result = host.Collection(request.Collection).Recall(query, context.CancellationToken).Unwrap();
        return Task.FromResult(result.ToProto());
    }
}
