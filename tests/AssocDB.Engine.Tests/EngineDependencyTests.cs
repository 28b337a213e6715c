namespace AssocDB.Engine.Tests;

// Guards the layering: the engine depends on TorchSharp, FASTER and logging only — never on gRPC or
// ASP.NET, which belong to the server.
public sealed class EngineDependencyTests
{
    [Fact]
    public void The_engine_references_no_grpc_or_aspnet_assembly()
    {
        string[] references = typeof(AssocDatabase).Assembly.GetReferencedAssemblies().Select(name => name.Name!).ToArray();

        Assert.Contains("TorchSharp", references);
        Assert.Contains("FASTER.core", references);
        Assert.DoesNotContain(references, name => name.StartsWith("Grpc", StringComparison.Ordinal)
            || name.StartsWith("Google.Protobuf", StringComparison.Ordinal)
            || name.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
    }
}
