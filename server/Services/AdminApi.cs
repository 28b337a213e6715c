using System.Diagnostics;
using System.Reflection;
using AssocDB.Engine.Model;
using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using AssocDB.Server.Metrics;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.AdminService: statistics and checkpoints.</summary>
internal sealed class AdminApi(DatabaseHost host) : AdminService.AdminServiceBase
{
    private static readonly string Version =
        typeof(AdminApi).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public override Task<GetStatsResponse> GetStats(GetStatsRequest request, ServerCallContext context)
    {
        var collections = host.Database.ListCollections();
        var response = new GetStatsResponse
        {
            Version = Version,
            Device = host.Database.Device,
            UptimeSeconds = host.Uptime.TotalSeconds,
            TotalConcepts = collections.Sum(c => c.ConceptCount),
            TotalFacts = collections.Sum(c => c.FactCount),
            MatrixBytes = collections.Sum(ServerMetrics.MatrixBytes),
        };
        response.Collections.AddRange(collections.Select(c => c.ToProto()));
        return Task.FromResult(response);
    }

    public override async Task<CheckpointResponse> Checkpoint(CheckpointRequest request, ServerCallContext context)
    {
        var clock = Stopwatch.StartNew();
        Result<bool> done = request.HasCollection
            ? await host.Collection(request.Collection).CheckpointAsync(context.CancellationToken)
            : await host.Database.CheckpointAsync(context.CancellationToken);
        done.Unwrap();

        return new CheckpointResponse { ElapsedSeconds = clock.Elapsed.TotalSeconds };
    }
}
