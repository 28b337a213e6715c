using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AssocDB.Server.Hosting;

/// <summary>SERVING once the database is open; NOT_SERVING while it recovers. Unavailable
/// collections change nothing: the server serves the others, each call naming one says why it
/// fails, and the metrics count them (a Degraded result would only log a warning at every probe).</summary>
internal sealed class DatabaseHealthCheck(DatabaseHost host) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(host.IsOpen ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("the database is recovering"));
}
