using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.QueryService: validate → engine → map.</summary>
internal sealed class QueriesApi(DatabaseHost host, RequestLimits limits) : QueryService.QueryServiceBase
{
    public override Task<RelatedResponse> Related(RelatedRequest request, ServerCallContext context)
    {
        var options = new E.RelatedOptions(
            limits.Depth(request.HasMaxDepth, request.MaxDepth), limits.Results(request.HasLimit, request.Limit));
        var answers = host.Collection(request.Collection).Related(request.Concept, request.Relation, options).Unwrap();
        var response = new RelatedResponse();
        response.Answers.AddRange(answers.Select(a => a.ToProto()));
        return Task.FromResult(response);
    }

    public override Task<NeighborsResponse> Neighbors(NeighborsRequest request, ServerCallContext context)
    {
        int limit = limits.Results(request.HasLimit, request.Limit);
        var edges = host.Collection(request.Collection)
            .Neighbors(request.Concept, request.HasRelation ? request.Relation : null, limit).Unwrap();
        var response = new NeighborsResponse();
        response.Edges.AddRange(edges.Select(e => e.ToProto()));
        return Task.FromResult(response);
    }
}
