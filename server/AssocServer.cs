using AssocDB.Engine;
using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Jobs;
using AssocDB.Server.Mapping;
using AssocDB.Server.Metrics;
using AssocDB.Server.Search;
using AssocDB.Server.Security;
using AssocDB.Server.Services;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Prometheus;

namespace AssocDB.Server;

/// <summary>
/// Builds and runs the AssocDB gRPC server. <see cref="Build"/> is what <c>Program</c> runs, and
/// what tests start in-process on a loopback port.
/// </summary>
public static class AssocServer
{
    /// <summary>How long a connection may send nothing before the server pings it.</summary>
    private static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromMinutes(1);

    /// <summary>How long the server waits for a ping's answer before closing the connection.</summary>
    private static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(20);

    /// <summary>The gRPC frame before each message: a compression flag and a 4-byte length.</summary>
    private const int GrpcMessageHeaderBytes = 5;

    /// <summary>Kestrel's default limit on a request's body.</summary>
    private const long KestrelDefaultBodyBytes = 30_000_000;

    /// <summary>Builds the server from the command line (with appsettings.json and environment
    /// variables beneath it). Throws <see cref="ServerConfigurationException"/> for bad settings.</summary>
    /// <param name="args">Command-line arguments; see <see cref="ServerCommandLine"/>.</param>
    /// <param name="configureServices">Replaces services after the defaults are registered (tests).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ServerCommandLine.Normalize(args ?? []),
            ContentRootPath = AppContext.BaseDirectory,
        });

        IConfigurationSection endpoints = builder.Configuration.GetSection("Kestrel:Endpoints");
        List<string> endpointUrls = [.. endpoints.GetChildren().Select(e => e["Url"] ?? "")];
        AssocServerOptions options = Load(builder.Configuration);
        IReadOnlyList<string> problems = options.Validate(endpointUrls);
        if (problems.Count > 0)
        {
            throw new ServerConfigurationException(problems);
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Endpoints from Kestrel:Endpoints (e.g. with TLS certificates) speak HTTP/2 too.
            kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http2);
            // A connection that has sent nothing for a while is pinged, and closed when the ping
            // goes unanswered: a client whose machine or network died would otherwise keep its
            // streams (ingest slots, job watches) open until the operating system gave up on it.
            kestrel.Limits.Http2.KeepAlivePingDelay = KeepAlivePingDelay;
            kestrel.Limits.Http2.KeepAlivePingTimeout = KeepAlivePingTimeout;
            // Kestrel's own body limit (30,000,000 bytes; grpc-dotnet lifts it for streaming calls
            // only) refused unary requests that a raised Limits:MaxMessageBytes admits, with a
            // reset instead of a status; it is raised to a message and its gRPC header. It is not
            // lowered with the message limit: gRPC refuses an oversized message by its header, but
            // Kestrel counts bytes as they arrive, and would reset a call over a small limit first.
            kestrel.Limits.MaxRequestBodySize = Math.Max(KestrelDefaultBodyBytes, (long)options.Limits.MaxMessageBytes + GrpcMessageHeaderBytes);
            AssocServerOptions.TryParseHost(options.Host, out var address);
            if (endpointUrls.Count == 0)
            {
                kestrel.Listen(address, options.Port, listen => listen.Protocols = HttpProtocols.Http2);
            }

            if (options.MetricsPort >= 0)
            {
                kestrel.Listen(address, options.MetricsPort, listen => listen.Protocols = HttpProtocols.Http1);
            }
        });

        IServiceCollection services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton<DatabaseOpener>((databaseOptions, loggerFactory, stopping) => AssocDatabase.Open(databaseOptions, loggerFactory, stopping));
        services.AddSingleton<DatabaseHost>();
        services.AddHostedService(provider => provider.GetRequiredService<DatabaseHost>());
        services.AddSingleton<SearchBatcher>();
        services.AddHostedService(provider => provider.GetRequiredService<SearchBatcher>());
        services.AddSingleton<IngestDrain>();
        services.AddHostedService(provider => provider.GetRequiredService<IngestDrain>());
        services.AddSingleton<JobRegistry>();
        services.AddHostedService(provider => provider.GetRequiredService<JobRegistry>());
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<ApiKey>();
        services.AddSingleton<RequestLimits>();
        // Marshallers find the limits through the call's HttpContext (RequestLimits.OfCurrentCall).
        services.AddHttpContextAccessor();
        services.AddSingleton<ReplyBudget>();
        services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = options.Limits.MaxMessageBytes;
            grpc.MaxSendMessageSize = options.Limits.MaxMessageBytes;
            // Outermost first: metrics see the final status of every call (ApiKeyGate refuses a call
            // without the key before these run; UncountedCalls counts it).
            grpc.Interceptors.Add<CallMetricsInterceptor>();
            grpc.Interceptors.Add<ErrorInterceptor>();
            grpc.Interceptors.Add<ReplySizeInterceptor>();
        })
            // DefineRelation's reply is sent whatever its size (see ReplySizeInterceptor); the
            // service's reads stay bounded by that interceptor.
            .AddServiceOptions<RelationsApi>(relations => relations.MaxSendMessageSize = null);
        services.AddGrpcReflection();
        services.AddGrpcHealthChecks().AddCheck<DatabaseHealthCheck>("database");
        services.AddSingleton<DatabaseHealthCheck>();
        configureServices?.Invoke(services);

        WebApplication app = builder.Build();
        ServerMetrics metrics = app.Services.GetRequiredService<ServerMetrics>();
        app.Use((context, next) => UncountedCalls.CountAsync(context, next, metrics));
        // Inside the count, so that refusals are counted; with a key, the metrics want it too: they
        // name every method and count the data.
        ApiKeyGate.Use(app, app.Services.GetRequiredService<ApiKey>());
        app.MapGrpcService<CollectionsApi>();
        app.MapGrpcService<ConceptsApi>();
        app.MapGrpcService<RelationsApi>();
        app.MapGrpcService<FactsApi>();
        app.MapGrpcService<QueriesApi>();
        app.MapGrpcService<AdminApi>();
        app.MapGrpcService<IngestApi>();
        app.MapGrpcService<LearningApi>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        app.MapMetrics(registry: metrics.Registry);
        return app;
    }

    /// <summary>The database a server built by <see cref="Build"/> has open, for code hosting the
    /// server that also calls the engine in-process (the gRPC bench compares the two on one
    /// collection). Throws <see cref="Grpc.Core.RpcException"/> (Unavailable) while it is still recovering.</summary>
    public static AssocDatabase Database(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<DatabaseHost>().Database;
    }

    /// <summary>Builds and runs the server until it is stopped (Ctrl+C, SIGTERM); returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        if (ServerCommandLine.AsksForHelp(args))
        {
            await Console.Out.WriteLineAsync(ServerCommandLine.Usage);
            return 0;
        }

        WebApplication app;
        try
        {
            app = Build(args);
        }
        catch (ServerConfigurationException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 2;
        }

        await using (app)
        {
            try
            {
                await app.StartAsync();
            }
            catch (IOException e)
            {
                // Most often the port is taken: one line saying so, not a crash with a stack trace.
                await Console.Error.WriteLineAsync($"cannot start: {e.Message}");
                await app.StopAsync();
                return 1;
            }
            catch (OperationCanceledException) when (app.Lifetime.ApplicationStopping.IsCancellationRequested)
            {
                // Stopped before Kestrel had bound: by Ctrl+C, or by the database failing to open
                // (already logged, with the exit code set).
                await app.StopAsync();
                return Environment.ExitCode;
            }

            await app.WaitForShutdownAsync();
        }

        return Environment.ExitCode;
    }

    private static AssocServerOptions Load(IConfiguration configuration)
    {
        try
        {
            // Unknown keys are errors, so a misspelt setting is reported rather than ignored.
            return configuration.GetSection(AssocServerOptions.Section).Get<AssocServerOptions>(binder => binder.ErrorOnUnknownConfiguration = true)
                ?? new AssocServerOptions();
        }
        catch (InvalidOperationException e)
        {
            throw new ServerConfigurationException([e.InnerException is null ? e.Message : $"{e.Message} ({e.InnerException.Message})"]);
        }
    }
}
