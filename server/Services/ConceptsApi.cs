using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.ConceptService: validate → engine → map.</summary>
[BindServiceMethod(typeof(ConceptServiceBinding), nameof(ConceptServiceBinding.BindService))]
internal sealed class ConceptsApi(DatabaseHost host, RequestLimits limits) : ConceptService.ConceptServiceBase
{
    public override async Task<UpsertConceptsResponse> UpsertConcepts(UpsertConceptsRequest request, ServerCallContext context)
    {
        limits.Batch(request.Concepts.Count, "concepts");
        var collection = host.Collection(request.Collection);
        var summary = (await collection.UpsertConceptsAsync(request.Concepts.Select(c => c.ToEngine()).ToList(), context.CancellationToken)).Unwrap();
        return new UpsertConceptsResponse { Summary = summary.ToProto() };
    }

    public override Task<GetConceptResponse> GetConcept(GetConceptRequest request, ServerCallContext context) =>
        Task.FromResult(new GetConceptResponse { Concept = host.Collection(request.Collection).GetConcept(request.Name).Unwrap().ToProto() });

    public override async Task<DeleteConceptsResponse> DeleteConcepts(DeleteConceptsRequest request, ServerCallContext context)
    {
        limits.Batch(request.Names.Count, "names");
        var collection = host.Collection(request.Collection);
        var summary = (await collection.DeleteConceptsAsync([.. request.Names], request.MissingOk, context.CancellationToken)).Unwrap();
        return new DeleteConceptsResponse { Summary = summary.ToProto() };
    }
}
