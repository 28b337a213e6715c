using AssocDB.Engine;
using AssocDB.Engine.Model;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;

namespace AssocDB.Server.Tests;

/// <summary>
/// The one error table: every engine error code has its status code and keeps the field at fault;
/// the server's own refusals (recovering) map as documented. Over-the-wire checks of the codes the
/// engine produces are in <see cref="BadInputTests"/>.
/// </summary>
public sealed class ErrorMappingTests
{
    [Theory]
    [InlineData(ErrorCode.NotFound, StatusCode.NotFound)]
    [InlineData(ErrorCode.AlreadyExists, StatusCode.AlreadyExists)]
    [InlineData(ErrorCode.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(ErrorCode.FailedPrecondition, StatusCode.FailedPrecondition)]
    [InlineData(ErrorCode.ResourceExhausted, StatusCode.ResourceExhausted)]
    public void Engine_error_code_maps_to_its_status_code_with_the_field(ErrorCode code, StatusCode expected)
    {
        RpcException e = GrpcErrors.ToRpcException(new EngineError(code, "facts[2].tail", "is wrong"));
        Assert.Equal(expected, e.StatusCode);
        Assert.Equal("facts[2].tail: is wrong", e.Status.Detail);
        Assert.Equal("facts[2].tail", e.Trailers.GetValue(GrpcErrors.FieldTrailer));
    }

    [Fact]
    public void Every_engine_error_code_has_a_mapping()
    {
        foreach (ErrorCode code in Enum.GetValues<ErrorCode>())
        {
            Assert.NotEqual(StatusCode.Unknown, GrpcErrors.ToStatusCode(code));
        }
    }

    [Theory]
    [InlineData(ErrorCode.NotFound, StatusCode.NotFound)]
    [InlineData(ErrorCode.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(ErrorCode.FailedPrecondition, StatusCode.FailedPrecondition)]
    public void Job_that_ends_with_an_engine_error_fails_with_its_status_code_and_field(ErrorCode code, StatusCode expected)
    {
        var failure = GrpcErrors.JobFailed(new EngineError(code, "collection", "is wrong"));
        Assert.Equal((expected, "collection", "collection: is wrong"), (failure.Code, failure.Field, failure.Message));
    }

    [Fact]
    public void Job_that_ends_with_a_fault_fails_internal()
    {
        var failure = GrpcErrors.JobFault(new InvalidOperationException("the matrix is gone"));
        Assert.Equal((StatusCode.Internal, "", "the matrix is gone"), (failure.Code, failure.Field, failure.Message));
    }

    [Fact]
    public async Task Calls_while_recovering_are_unavailable_and_health_is_not_serving()
    {
        using var recovery = new ManualResetEventSlim();
        await using RunningServer server = await RunningServer.StartAsync(
            services: s => s.AddSingleton<DatabaseOpener>((options, logs) =>
            {
                recovery.Wait(TimeSpan.FromSeconds(30));
                return AssocDatabase.Open(options, logs);
            }),
            waitServing: false);

        var e = await Assert.ThrowsAsync<AssocDB.Client.AssocDbException>(() => server.Client.ListCollectionsAsync());
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        var health = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, health.Status);

        recovery.Set();
        await server.WaitServingAsync();
        Assert.Empty(await server.Client.ListCollectionsAsync());
    }
}
