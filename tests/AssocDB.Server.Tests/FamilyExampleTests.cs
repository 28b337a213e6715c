using AssocDB.Client;
using AssocDB.Protocol.V1;

namespace AssocDB.Server.Tests;

/// <summary>
/// The seed's family example over the wire: a fact stored once answers from either end, and
/// declared inverses and compositions derive new answers, each with its proof, as soon as the
/// facts are added.
/// </summary>
public sealed class FamilyExampleTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly AssocDbClient _client = fixture.Client;

    [Fact]
    public async Task Family_facts_answer_inverse_and_composed_questions_with_proofs()
    {
        string c = ServerFixture.NewCollection("family");
        await _client.CreateCollectionAsync(c, 8);
        await _client.DefineRelationAsync(c, "mother_of", inverseOf: "child_of");
        await _client.DefineRelationAsync(c, "grandmother_of", inverseOf: "grandchild_of", compositions: [("mother_of", "mother_of")]);
        await _client.AddFactsAsync(c, [NewFact("A", "mother_of", "B"), NewFact("B", "mother_of", "C")]);

        Answer childOfC = Assert.Single((await _client.RelatedAsync(c, "C", "child_of")).Answers);
        Assert.Equal("B", childOfC.Concept);
        Assert.Equal(AnswerKind.Derived, childOfC.Kind);
        Assert.Equal([Key("B", "mother_of", "C")], childOfC.Proof.Facts);
        Assert.NotEmpty(childOfC.Proof.Rules);

        Answer grandchild = Assert.Single((await _client.RelatedAsync(c, "A", "grandmother_of")).Answers);
        Assert.Equal("C", grandchild.Concept);
        Assert.Equal(AnswerKind.Derived, grandchild.Kind);
        Assert.Equal([Key("A", "mother_of", "B"), Key("B", "mother_of", "C")], grandchild.Proof.Facts);
        Assert.NotEmpty(grandchild.Proof.Rules);

        Answer grandmother = Assert.Single((await _client.RelatedAsync(c, "C", "grandchild_of")).Answers);
        Assert.Equal("A", grandmother.Concept);
        Assert.Equal(AnswerKind.Derived, grandmother.Kind);
        Assert.Equal(2, grandmother.Proof.Facts.Count);

        Answer childOfB = Assert.Single((await _client.RelatedAsync(c, "B", "child_of")).Answers);
        Assert.Equal("A", childOfB.Concept);
        Assert.Equal(AnswerKind.Derived, childOfB.Kind);
        Assert.Equal([Key("A", "mother_of", "B")], childOfB.Proof.Facts);

        Answer stored = Assert.Single((await _client.RelatedAsync(c, "A", "mother_of")).Answers);
        Assert.Equal(("B", AnswerKind.Stored), (stored.Concept, stored.Kind));

        await _client.AddFactAsync(c, "B", "mother_of", "D");
        IReadOnlyList<Answer> grandchildren = (await _client.RelatedAsync(c, "A", "grandmother_of")).Answers;
        Assert.Equal(["C", "D"], grandchildren.Select(a => a.Concept).Order());
        Assert.All(grandchildren, a => Assert.Equal(AnswerKind.Derived, a.Kind));
        Assert.Contains(grandchildren, a => a.Concept == "D" && a.Proof.Facts.Contains(Key("B", "mother_of", "D")));
    }

    private static FactInput NewFact(string head, string relation, string tail) => new() { Head = head, Relation = relation, Tail = tail };

    private static FactKey Key(string head, string relation, string tail) => new() { Head = head, Relation = relation, Tail = tail };
}
