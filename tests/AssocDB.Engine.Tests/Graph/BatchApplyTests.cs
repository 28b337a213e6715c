using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards applying a write whose edges are linked into the adjacency lists on another core while the
// rest of it is applied (a bulk load's batches, of a thousand new facts or more): every fact is
// listed at both of its ends and found again as stored, after the write and after a reopen replays
// it. And large writes that read the lists while applying (a fact repeated within the batch, a
// stored fact replaced, a stored concept given a new vector) are still applied in order, with the
// answers of the same facts written one way or the other.
public sealed class BatchApplyTests : DatabaseTests
{
    private const int Concepts = 300;
    private static readonly string[] Relations = ["r0", "r1", "r2"];

    /// <summary>New facts between new concepts, enough to make a batch of them large.</summary>
    private static IEnumerable<FactInput> NewFacts(string prefix) =>
        Enumerable.Range(0, 1_500).Select(i => new FactInput($"{prefix}{i}", "filler", $"{prefix}{i + 1}"));

    [Fact]
    public async Task New_facts_are_listed_at_both_ends_and_found_again_after_a_reopen()
    {
        Collection collection = Db.Create();
        var random = new Random(11);
        var facts = new HashSet<(string Head, string Relation, string Tail)>();
        while (facts.Count < 6_000)
        {
            int head = random.Next(Concepts);
            // Some facts join a concept to itself: listed once at their one end.
            int tail = random.Next(20) == 0 ? head : random.Next(Concepts);
            facts.Add(($"c{head}", Relations[random.Next(Relations.Length)], $"c{tail}"));
        }

        FactInput[] inputs = [.. facts.Select(fact => new FactInput(fact.Head, fact.Relation, fact.Tail))];
        long sequence = 0;
        foreach (FactInput[] batch in inputs.Chunk(2_000))
        {
            IngestResult result = (await collection.IngestAsync(new IngestBatch("load", sequence++, [], batch))).AssertOk();
            Assert.Equal(batch.Length, result.Facts.Applied);
        }

        Dictionary<string, int> degrees = facts
            .SelectMany(fact => fact.Head == fact.Tail ? new[] { fact.Head } : [fact.Head, fact.Tail])
            .GroupBy(concept => concept)
            .ToDictionary(group => group.Key, group => group.Count());
        await AssertListedAndFoundAsync(collection, facts, degrees);

        // Without a checkpoint, the reopen replays every batch through the same path.
        await Db.ReopenAsync(checkpointOnClose: false);
        await AssertListedAndFoundAsync(Db.Get(), facts, degrees);
    }

    private static async Task AssertListedAndFoundAsync(Collection collection, HashSet<(string Head, string Relation, string Tail)> facts, Dictionary<string, int> degrees)
    {
        foreach ((string concept, int degree) in degrees)
        {
            Assert.Equal(degree, collection.GetConcept(concept).AssertOk().Degree);
            foreach (EdgeView edge in collection.Neighbors(concept, limit: 1000).AssertOk())
            {
                Assert.Contains((edge.Fact.Head, edge.Fact.Relation, edge.Fact.Tail), facts);
            }
        }

        // Written again, each is found as stored (the duplicate check scans the lists).
        WriteSummary again = (await collection.AddFactsAsync([.. facts.Select(fact => new FactInput(fact.Head, fact.Relation, fact.Tail))])).AssertOk();
        Assert.Equal(new WriteSummary(0, facts.Count), again);
        Assert.Equal(facts.Count, collection.Describe().AssertOk().FactCount);
    }

    [Fact]
    public async Task A_fact_repeated_within_a_batch_is_stored_once_with_its_last_weight()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("a", "r", "b", 1f), .. NewFacts("x"), new FactInput("a", "r", "c", 1f), new FactInput("a", "r", "b", 2f)])).AssertOk();

        Assert.Equal(1_502, collection.Describe().AssertOk().FactCount);
        Assert.Equal(2, collection.GetConcept("a").AssertOk().Degree);
        Assert.Equal(1, collection.GetConcept("b").AssertOk().Degree);
        Assert.Equal(2f, collection.Neighbors("b").AssertOk().Single().Weight);
    }

    // A concept new in a batch holds zeros until its name vector is filled at the batch's end, so
    // a zero vector given for it later in the batch compared equal, was counted unchanged, and the
    // name vector was stored instead.
    [Fact]
    public async Task A_concept_given_a_zero_vector_after_its_creation_in_one_batch_keeps_it()
    {
        Collection collection = Db.Create(dimension: 4, metric: Metric.L2);

        WriteSummary summary = (await collection.UpsertConceptsAsync([new ConceptInput("a"), new ConceptInput("a", [0f, 0f, 0f, 0f])])).AssertOk();

        Assert.Equal(new WriteSummary(2, 0), summary);
        Assert.Equal([0f, 0f, 0f, 0f], collection.GetConcept("a").AssertOk().Vector);
    }

    [Fact]
    public async Task A_stored_fact_replaced_among_new_ones_stays_listed_once()
    {
        Collection collection = Db.Create();
        (await collection.AddFactsAsync([new FactInput("a", "r", "b", 1f)])).AssertOk();
        (await collection.AddFactsAsync([.. NewFacts("x"), new FactInput("a", "r", "c"), new FactInput("a", "r", "b", 3f), new FactInput("d", "r", "b")])).AssertOk();

        Assert.Equal(1_503, collection.Describe().AssertOk().FactCount);
        Assert.Equal(2, collection.GetConcept("a").AssertOk().Degree);
        Assert.Equal(2, collection.GetConcept("b").AssertOk().Degree);
        Assert.Equal(3f, collection.Neighbors("a", limit: 10).AssertOk().Single(edge => edge.Other == "b").Weight);
    }

    // The closed-form vector of r is estimated from its facts' rows: a stored concept's new vector
    // moves its stored facts' share, read from its list, while the batch's new facts are added.
    [Fact]
    public async Task A_batch_giving_a_stored_concept_a_new_vector_estimates_as_the_final_facts_do()
    {
        Collection stepwise = Db.Create("stepwise", dimension: 4);
        (await stepwise.UpsertConceptsAsync([new ConceptInput("a", [1, 0, 0, 0]), new ConceptInput("b", [0, 1, 0, 0]), new ConceptInput("c", [0, 0, 0, 1])])).AssertOk();
        (await stepwise.AddFactsAsync([new FactInput("a", "r", "b")])).AssertOk();
        (await stepwise.IngestAsync(new IngestBatch("load", 0, [new ConceptInput("a", [0, 0, 1, 0])], [new FactInput("c", "r", "a"), .. NewFacts("x")]))).AssertOk();

        Collection direct = Db.Create("direct", dimension: 4);
        (await direct.UpsertConceptsAsync([new ConceptInput("a", [0, 0, 1, 0]), new ConceptInput("b", [0, 1, 0, 0]), new ConceptInput("c", [0, 0, 0, 1])])).AssertOk();
        (await direct.AddFactsAsync([new FactInput("a", "r", "b"), new FactInput("c", "r", "a"), .. NewFacts("x")])).AssertOk();

        float[] expected = direct.GetRelation("r").AssertOk().Vector!;
        float[] estimated = stepwise.GetRelation("r").AssertOk().Vector!;
        Assert.Equal(expected.Length, estimated.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], estimated[i], 5);
        }

        Assert.Equal(2, stepwise.GetConcept("a").AssertOk().Degree);
    }
}
