namespace AssocDB.Engine.Tests;

// Guards that the engine's results are what their interfaces say: RelatedAnswers and EdgePage were
// ReadOnlyCollections, so they implemented IList<T>, whose Add, Insert, Remove, Clear and indexer
// setter threw NotSupportedException for any caller that took them at that word. A result list is
// read-only, so no public engine type may implement ICollection<T> (which IList<T> extends).
public sealed class ResultTypeTests
{
    [Fact]
    public void No_public_engine_type_claims_a_mutable_collection_interface()
    {
        string[] claiming = [.. typeof(AssocDatabase).Assembly.GetExportedTypes()
            .Where(type => type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(ICollection<>)))
            .Select(type => type.FullName!)];

        Assert.Empty(claiming);
    }
}
