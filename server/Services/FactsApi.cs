using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.FactService: validate → engine → map.</summary>
[BindServiceMethod(typeof(FactServiceBinding), nameof(FactServiceBinding.BindService))]
internal sealed class FactsApi(DatabaseHost host, RequestLimits limits) : FactService.FactServiceBase
{
    public override async Task<AddFactsResponse> AddFacts(AddFactsRequest request, ServerCallContext context)
    {
        limits.Batch(request.Facts.Count, "facts");
        var collection = host.Collection(request.Collection);
        var summary = (await collection.AddFactsAsync(request.Facts.Select(f => f.ToEngine()).ToList(), context.CancellationToken)).Unwrap();
        return new AddFactsResponse { Summary = summary.ToProto() };
    }

    public override async Task<RemoveFactsResponse> RemoveFacts(RemoveFactsRequest request, ServerCallContext context)
    {
        limits.Batch(request.Facts.Count, "facts");
        var collection = host.Collection(request.Collection);
        var summary = (await collection.RemoveFactsAsync(request.Facts.Select(f => f.ToEngine()).ToList(), context.CancellationToken)).Unwrap();
        return new RemoveFactsResponse { Summary = summary.ToProto() };
    }
}
