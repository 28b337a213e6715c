using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Jobs;
using AssocDB.Server.Mapping;
using Grpc.Core;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.CollectionService: validate → engine → map.</summary>
internal sealed class CollectionsApi(DatabaseHost host, RequestLimits limits, JobRegistry jobs) : CollectionService.CollectionServiceBase
{
    public override Task<CreateCollectionResponse> CreateCollection(CreateCollectionRequest request, ServerCallContext context)
    {
        limits.Dimension(request.Dimension);
        var spec = new E.CollectionSpec(request.Name, request.Dimension, request.Metric.ToEngine(), request.Precision.ToEngine());
        E.CollectionInfo info = host.Database.CreateCollection(spec).Unwrap();
        return Task.FromResult(new CreateCollectionResponse { Collection = info.ToProto() });
    }

    public override Task<ListCollectionsResponse> ListCollections(ListCollectionsRequest request, ServerCallContext context)
    {
        var response = new ListCollectionsResponse();
        response.Collections.AddRange(host.Database.ListCollections().Select(c => c.ToProto()));
        return Task.FromResult(response);
    }

    public override Task<DescribeCollectionResponse> DescribeCollection(DescribeCollectionRequest request, ServerCallContext context) =>
        Task.FromResult(new DescribeCollectionResponse { Collection = host.Database.DescribeCollection(request.Name).Unwrap().ToProto() });

    public override async Task<DropCollectionResponse> DropCollection(DropCollectionRequest request, ServerCallContext context)
    {
        // A job still training or mining it would run on to no purpose (its result has nowhere to
        // go) and keep the name busy for a new collection's jobs. One started after the first
        // cancel, before the drop closed the collection, runs on the copy it took: cancelled after.
        E.Result<Engine.Collection> open = host.Database.GetCollection(request.Name);
        if (open.IsOk)
        {
            await jobs.CancelRunningAsync(open.Value);
        }

        bool dropped = (await host.Database.DropCollectionAsync(request.Name)).Unwrap();
        if (open.IsOk)
        {
            await jobs.CancelRunningAsync(open.Value);
        }

        return new() { Dropped = dropped };
    }
}
