using System.Text;
using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

/// <summary>
/// Packed facts, whose names the engine resolves from their characters, must be ingested exactly as
/// the same facts given as <see cref="FactInput"/>s: the same rejections (field and reason), the same
/// summaries, and the same stored contents, names stored and new, repeated within the batch, not
/// ASCII, and around the name length limit, before and after a reopen.
/// </summary>
public sealed class PackedFactsIngestTests : DatabaseTests
{
    private static readonly Dictionary<string, string> Payload = new() { ["source"] = "test" };

    /// <summary>Facts of the second batch, all valid (planned from the packed characters): stored
    /// ones (unchanged, reweighted), new ones whose names repeat within the batch, one with a payload.</summary>
    private static readonly FactInput[] Second =
    [
        new("a", "r", "b"),
        new("a", "r", "c", 2f),
        new("b", "knows", "żółw", Payload: Payload),
        new("żółw", "knows", "nowy"),
        new("nowy", "likes", "a"),
        new(new string('é', 512), "r", "limit"),
        new("nowy", "likes", "a"),
    ];

    /// <summary>Facts of the third batch: invalid ones among valid ones.</summary>
    private static readonly FactInput[] Third =
    [
        new("", "r", "x"),
        new("a", "r", "d", float.NaN),
        new("limit", "r", "nowy"),
        new(new string('é', 513), "r", "over"),
        new("a", "", "b"),
        new("a", "r", "b"),
    ];

    [Fact]
    public async Task Packed_facts_are_stored_and_refused_as_the_same_fact_inputs()
    {
        Collection listed = Db.Create("listed", dimension: 4), packed = Db.Create("packed", dimension: 4);
        FactInput[] first = [new("a", "r", "b"), new("a", "r", "c"), new("b", "r", "c")];
        foreach (Collection collection in new[] { listed, packed })
        {
            (await collection.IngestAsync(new IngestBatch("s", 0, [], first))).AssertOk();
        }

        IngestResult fromList = (await listed.IngestAsync(new IngestBatch("s", 1, [], Second))).AssertOk();
        IngestResult fromPacked;
        using (PackedFacts facts = Pack(Second))
        {
            fromPacked = (await packed.IngestAsync(new IngestBatch("s", 1, [], facts))).AssertOk();
        }

        Assert.Equal(fromList.Facts, fromPacked.Facts);
        Assert.Equal(new WriteSummary(5, 2, 4, 2), fromPacked.Facts);
        Assert.Empty(fromPacked.Rejected);
        AssertSameContents(listed, packed);

        fromList = (await listed.IngestAsync(new IngestBatch("s", 2, [], Third))).AssertOk();
        using (PackedFacts facts = Pack(Third))
        {
            fromPacked = (await packed.IngestAsync(new IngestBatch("s", 2, [], facts))).AssertOk();
        }

        Assert.Equal(fromList.Facts, fromPacked.Facts);
        Assert.Equal(new WriteSummary(1, 1), fromPacked.Facts);
        Assert.Equal(fromList.Rejected, fromPacked.Rejected);
        Assert.Equal(["facts[0].head", "facts[1].weight", "facts[3].head", "facts[4].relation"], fromPacked.Rejected.Select(rejection => rejection.Field));
        AssertSameContents(listed, packed);

        await Db.ReopenAsync(checkpointOnClose: false);
        AssertSameContents(Db.Get("listed"), Db.Get("packed"));
    }

    [Fact]
    public void Packed_facts_read_back_as_the_fact_inputs_they_were_made_from()
    {
        PackedFacts facts = Pack(Second);
        Assert.Equal(Second.Length, facts.Count);
        Assert.Equal(Second.Select(fact => fact with { Payload = null }), facts.Select(fact => fact with { Payload = null }));
        Assert.Same(Payload, facts[2].Payload);
        Assert.Throws<ArgumentOutOfRangeException>(() => facts[Second.Length]);

        facts.Dispose();
        Assert.Throws<ObjectDisposedException>(() => facts.Count);
    }

    /// <summary>Facts packed into buffers far smaller than they need, so that both grow.</summary>
    private static PackedFacts Pack(IEnumerable<FactInput> facts)
    {
        var packed = new PackedFacts(1, 1);
        foreach (FactInput fact in facts)
        {
            packed.Add(Encoding.UTF8.GetBytes(fact.Head), Encoding.UTF8.GetBytes(fact.Relation), Encoding.UTF8.GetBytes(fact.Tail), fact.Weight, fact.Payload);
        }

        return packed;
    }

    private static void AssertSameContents(Collection expected, Collection actual)
    {
        Assert.Equal(expected.Describe().AssertOk() with { Name = "", Folder = "" }, actual.Describe().AssertOk() with { Name = "", Folder = "" });
        foreach (string concept in new[] { "a", "b", "c", "żółw", "nowy", new string('é', 512), "limit" })
        {
            Assert.Equal(expected.GetConcept(concept).AssertOk().Id, actual.GetConcept(concept).AssertOk().Id);
            Assert.Equal(Edges(expected, concept), Edges(actual, concept));
        }

        Assert.False(actual.GetConcept("over").IsOk);
        Assert.Equal(expected.ListRelations().AssertOk().Select(relation => relation.Name), actual.ListRelations().AssertOk().Select(relation => relation.Name));
    }

    private static string[] Edges(Collection collection, string concept) =>
        [.. collection.Neighbors(concept).AssertOk().Select(edge => $"{edge.Fact} {edge.Direction} {edge.Weight} {string.Join(",", edge.Payload)}")];
}
