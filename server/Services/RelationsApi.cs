using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.RelationService: validate → engine → map.</summary>
[BindServiceMethod(typeof(RelationServiceBinding), nameof(RelationServiceBinding.BindService))]
internal sealed class RelationsApi(DatabaseHost host, RequestLimits limits, ReplyBudget budget) : RelationService.RelationServiceBase
{
    public override async Task<DefineRelationResponse> DefineRelation(DefineRelationRequest request, ServerCallContext context)
    {
        var collection = host.Collection(request.Collection);
        var relation = (await collection.DefineRelationAsync(request.ToEngine(), context.CancellationToken)).Unwrap();
        return new DefineRelationResponse { Relation = relation.ToProto() };
    }

    public override Task<GetRelationResponse> GetRelation(GetRelationRequest request, ServerCallContext context) =>
        Task.FromResult(new GetRelationResponse { Relation = host.Collection(request.Collection).GetRelation(request.Name).Unwrap().ToProto() });

    public override Task<ListRelationsResponse> ListRelations(ListRelationsRequest request, ServerCallContext context)
    {
        int limit = limits.Results(request.HasLimit, request.Limit);
        int after = PageTokens.After(request.PageToken, "relation");
        var relations = host.Collection(request.Collection).ListRelations(after, limit + 1).Unwrap();
        var response = new ListRelationsResponse();
        int kept = budget.Fill(response, response.Relations, ListRelationsResponse.RelationsFieldNumber, relations.Take(limit).Select(r => r.ToProto()), reserved: PageTokens.Bytes);
        response.NextPageToken = kept < relations.Count ? PageTokens.Of(relations[kept - 1].Id) : "";
        return Task.FromResult(response);
    }
}
