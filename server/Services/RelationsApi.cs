using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.RelationService: validate → engine → map.</summary>
internal sealed class RelationsApi(DatabaseHost host) : RelationService.RelationServiceBase
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
        var response = new ListRelationsResponse();
        response.Relations.AddRange(host.Collection(request.Collection).ListRelations().Select(r => r.ToProto()));
        return Task.FromResult(response);
    }
}
