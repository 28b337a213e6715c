using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards the seed's promise: a fact stored once answers from either end, and declared properties
// (inverse, composition, composition through an inverse) make consequences answerable at once.
public sealed class FamilyExampleTests : DatabaseTests
{
    private Collection _family = null!;

    public override async Task InitializeAsync()
    {
        _family = Db.Create("family");
        (await _family.DefineRelationAsync(new RelationSpec("mother_of", InverseOf: "child_of"))).AssertOk();
        (await _family.DefineRelationAsync(new RelationSpec("grandmother_of", InverseOf: "grandchild_of",
            Compositions: [new Composition("mother_of", "mother_of")]))).AssertOk();
        (await _family.AddFactsAsync([new FactInput("A", "mother_of", "B"), new FactInput("B", "mother_of", "C")])).AssertOk();
    }

    private IReadOnlyList<Answer> Related(string concept, string relation) => _family.Related(concept, relation).AssertOk();

    [Fact]
    public void Child_of_is_answered_by_the_stored_mother_of_edge_read_backwards()
    {
        Answer answer = Assert.Single(Related("C", "child_of"));
        Assert.Equal("B", answer.Concept);
        Assert.Equal(AnswerKind.Derived, answer.Kind);
        Assert.Equal([new FactKey("B", "mother_of", "C")], answer.Proof.Facts);
        Assert.Equal(["child_of = inverse(mother_of)"], answer.Proof.Rules);

        Assert.Equal("A", Assert.Single(Related("B", "child_of")).Concept);
    }

    [Fact]
    public void Grandmother_of_follows_from_the_composition_rule()
    {
        Answer answer = Assert.Single(Related("A", "grandmother_of"));
        Assert.Equal("C", answer.Concept);
        Assert.Equal(AnswerKind.Derived, answer.Kind);
        Assert.Equal([new FactKey("A", "mother_of", "B"), new FactKey("B", "mother_of", "C")], answer.Proof.Facts);
        Assert.Equal(["mother_of ∘ mother_of ⇒ grandmother_of"], answer.Proof.Rules);
    }

    [Fact]
    public void Grandchild_of_is_the_composition_read_through_its_inverse()
    {
        Answer answer = Assert.Single(Related("C", "grandchild_of"));
        Assert.Equal("A", answer.Concept);
        Assert.Equal([new FactKey("A", "mother_of", "B"), new FactKey("B", "mother_of", "C")], answer.Proof.Facts);
        Assert.Equal(["mother_of ∘ mother_of ⇒ grandmother_of", "grandchild_of = inverse(grandmother_of)"], answer.Proof.Rules);
    }

    [Fact]
    public void Stored_facts_answer_as_stored_from_the_head()
    {
        Answer answer = Assert.Single(Related("A", "mother_of"));
        Assert.Equal(("B", AnswerKind.Stored), (answer.Concept, answer.Kind));
        Assert.Empty(answer.Proof.Rules);
    }

    [Fact]
    public async Task A_new_fact_makes_its_consequences_answerable_at_once()
    {
        (await _family.AddFactsAsync([new FactInput("B", "mother_of", "D")])).AssertOk();

        Assert.Equal(["C", "D"], Related("A", "grandmother_of").Select(answer => answer.Concept));
        Assert.Equal("A", Assert.Single(Related("D", "grandchild_of")).Concept);
        Assert.Equal("B", Assert.Single(Related("D", "child_of")).Concept);
    }

    [Fact]
    public void Neighbors_lists_every_edge_in_both_directions()
    {
        IReadOnlyList<EdgeView> edges = _family.Neighbors("B").AssertOk();
        Assert.Equal(2, edges.Count);
        Assert.Contains(edges, edge => edge.Direction == EdgeDirection.Incoming && edge.Other == "A" && edge.Fact == new FactKey("A", "mother_of", "B"));
        Assert.Contains(edges, edge => edge.Direction == EdgeDirection.Outgoing && edge.Other == "C");
    }

    [Fact]
    public void Declaring_an_inverse_declares_it_both_ways()
    {
        Assert.Equal("child_of", _family.GetRelation("mother_of").AssertOk().InverseOf);
        Assert.Equal("mother_of", _family.GetRelation("child_of").AssertOk().InverseOf);
        Assert.Equal("grandmother_of", _family.GetRelation("grandchild_of").AssertOk().InverseOf);
    }
}
