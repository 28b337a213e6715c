using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Graph;

// Guards the graph's semantics: facts are unique, deletes cascade and free ids without leaking
// them into answers, and the reasoner's symmetric/transitive/depth/limit rules terminate correctly.
public sealed class GraphSemanticsTests : DatabaseTests
{
    private Collection _graph = null!;

    public override Task InitializeAsync()
    {
        _graph = Db.Create(dimension: 4);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_same_fact_added_twice_is_kept_once_and_implicit_names_are_created()
    {
        WriteSummary first = (await _graph.AddFactsAsync([new FactInput("a", "r", "b"), new FactInput("a", "r", "b")])).AssertOk();
        Assert.Equal(new WriteSummary(1, 1, 2, 1), first);
        Assert.Equal(new WriteSummary(0, 1), (await _graph.AddFactsAsync([new FactInput("a", "r", "b")])).AssertOk());
        Assert.Equal(1, _graph.Describe().AssertOk().FactCount);

        Assert.Equal(new WriteSummary(1, 0), (await _graph.AddFactsAsync([new FactInput("a", "r", "b", 2f)])).AssertOk());
        Assert.Equal(2f, Assert.Single(_graph.Neighbors("a").AssertOk()).Weight);
        Assert.Equal(1, _graph.GetRelation("r").AssertOk().FactCount);
    }

    // Neighbors returned at most 10,000 edges and said nothing of the rest, so a hub's other facts
    // could not be read at all. Pages now follow edge ids: every edge once, whatever is removed and
    // stored between pages, and a page says whether another follows.
    [Fact]
    public async Task A_hubs_edges_are_read_page_by_page_each_once()
    {
        FactInput[] facts = [.. Enumerable.Range(0, 50).Select(i => new FactInput(i % 2 == 0 ? "hub" : $"x{i}", i % 3 == 0 ? "r" : "s", i % 2 == 0 ? $"x{i}" : "hub"))];
        (await _graph.AddFactsAsync(facts)).AssertOk();
        (await _graph.RemoveFactsAsync([new FactKey("hub", "r", "x0"), new FactKey("hub", "s", "x2")])).AssertOk();

        var read = new List<EdgeView>();
        int after = -1;
        int pages = 0;
        while (true)
        {
            EdgePage page = _graph.Neighbors("hub", limit: 7, after: after).AssertOk();
            Assert.True(++pages <= 8, "49 edges at 7 a page took more than 8 pages");
            read.AddRange(page);
            if (pages == 2)
            {
                // Stored mid-paging: it takes a removed fact's slot, before the cursor, so it may be
                // missed; nothing already read is read again.
                (await _graph.AddFactsAsync([new FactInput("hub", "r", "late")])).AssertOk();
            }

            if (page.Next is not int next)
            {
                Assert.InRange(page.Count, 1, 7);
                break;
            }

            Assert.Equal(7, page.Count);
            after = next;
        }

        Assert.Equal(48, read.Count(edge => edge.Other != "late"));
        Assert.Equal(read.Count, read.Select(edge => edge.Fact).Distinct().Count());
        Assert.Equal(
            facts.Select(fact => $"{fact.Head} {fact.Relation} {fact.Tail}").Except(["hub r x0", "hub s x2"]).Order(StringComparer.Ordinal),
            read.Where(edge => edge.Other != "late").Select(edge => edge.Fact.ToString()).Order(StringComparer.Ordinal));

        // One relation's edges page the same way.
        EdgePage first = _graph.Neighbors("hub", "r", limit: 10).AssertOk();
        EdgePage rest = _graph.Neighbors("hub", "r", limit: 10, after: first.Next!.Value).AssertOk();
        Assert.Null(rest.Next);
        Assert.Equal(
            _graph.Neighbors("hub", "r", limit: 100).AssertOk().Select(edge => edge.Fact),
            first.Concat(rest).Select(edge => edge.Fact));
    }

    [Fact]
    public async Task A_large_batch_resolves_stored_repeated_and_new_facts_like_small_ones()
    {
        // Batches this large look names and edges up on several threads; the outcome must not change.
        FactInput[] stored = Enumerable.Range(0, 1500).Select(i => new FactInput($"s{i}", "r", $"s{i + 1}")).ToArray();
        Assert.Equal(new WriteSummary(1500, 0, 1501, 1), (await _graph.AddFactsAsync(stored)).AssertOk());

        FactInput[] mixed =
        [
            .. stored.Take(1000),                                                      // stored, unchanged
            .. stored.Skip(1000).Take(200).Select(fact => fact with { Weight = 3f }),  // stored, new weight
            .. Enumerable.Range(0, 1000).Select(i => new FactInput($"s{i}", "q", $"n{i % 500}")), // new relation, half-new names
            new FactInput("n1", "q", "n2"), new FactInput("n1", "q", "n2"),             // repeated within the batch
        ];
        Assert.Equal(new WriteSummary(1201, 1001, 500, 1), (await _graph.AddFactsAsync(mixed)).AssertOk());

        Assert.Equal(3f, Assert.Single(_graph.Neighbors("s1100").AssertOk(), edge => edge.Fact.Tail == "s1101").Weight);
        Assert.Equal(1500, _graph.GetRelation("r").AssertOk().FactCount);
        Assert.Equal(1001, _graph.GetRelation("q").AssertOk().FactCount);
        Assert.Equal(2001, _graph.Describe().AssertOk().ConceptCount);
    }

    [Fact]
    public async Task Deleting_a_concept_removes_its_edges_and_reuses_its_row_id()
    {
        (await _graph.AddFactsAsync([new FactInput("a", "r", "b"), new FactInput("b", "r", "c"), new FactInput("c", "r", "a")])).AssertOk();
        int freed = _graph.GetConcept("b").AssertOk().Id;

        Assert.Equal(new WriteSummary(1, 0), (await _graph.DeleteConceptsAsync(["b"])).AssertOk());

        Assert.Equal(1, _graph.Describe().AssertOk().FactCount);
        Assert.Empty(_graph.Related("a", "r").AssertOk());
        Assert.DoesNotContain(_graph.Neighbors("c").AssertOk(), edge => edge.Other == "b");
        _graph.GetConcept("b").AssertError(ErrorCode.NotFound, "name");

        (await _graph.UpsertConceptsAsync([new ConceptInput("z")])).AssertOk();
        Assert.Equal(freed, _graph.GetConcept("z").AssertOk().Id);
        Assert.Empty(_graph.Related("a", "r").AssertOk());
    }

    // A retry of a delete whose outcome the caller did not learn must not fail on the names the
    // first attempt removed; without missingOk a missing name still refuses the whole batch.
    [Fact]
    public async Task A_delete_with_missing_ok_counts_missing_names_as_unchanged()
    {
        (await _graph.AddFactsAsync([new FactInput("a", "r", "b"), new FactInput("c", "r", "d")])).AssertOk();
        (await _graph.DeleteConceptsAsync(["a"])).AssertOk();

        (await _graph.DeleteConceptsAsync(["a", "c"])).AssertError(ErrorCode.NotFound, "names[0]");
        Assert.Equal(1, _graph.Describe().AssertOk().FactCount);

        Assert.Equal(new WriteSummary(1, 2), (await _graph.DeleteConceptsAsync(["a", "c", "c"], missingOk: true)).AssertOk());
        Assert.Equal((0, 2), (_graph.Describe().AssertOk().FactCount, _graph.Describe().AssertOk().ConceptCount));
    }

    [Fact]
    public async Task Removing_facts_is_idempotent()
    {
        (await _graph.AddFactsAsync([new FactInput("a", "r", "b")])).AssertOk();
        Assert.Equal(new WriteSummary(1, 1), (await _graph.RemoveFactsAsync([new FactKey("a", "r", "b"), new FactKey("a", "r", "zzz")])).AssertOk());
        Assert.Equal(new WriteSummary(0, 1), (await _graph.RemoveFactsAsync([new FactKey("a", "r", "b")])).AssertOk());
        Assert.Empty(_graph.Neighbors("a").AssertOk());
    }

    [Fact]
    public async Task Symmetric_relations_answer_from_either_end()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("sibling_of", Symmetric: true))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("a", "sibling_of", "b")])).AssertOk();

        Answer answer = Assert.Single(_graph.Related("b", "sibling_of").AssertOk());
        Assert.Equal(("a", AnswerKind.Derived), (answer.Concept, answer.Kind));
        Assert.Equal(["symmetric(sibling_of)"], answer.Proof.Rules);
        Assert.Equal(AnswerKind.Stored, Assert.Single(_graph.Related("a", "sibling_of").AssertOk()).Kind);
    }

    [Fact]
    public async Task Transitive_closure_terminates_on_cycles_and_respects_depth()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("ancestor_of", Transitive: true))).AssertOk();
        (await _graph.AddFactsAsync([
            new FactInput("a", "ancestor_of", "b"), new FactInput("b", "ancestor_of", "c"),
            new FactInput("c", "ancestor_of", "d"), new FactInput("d", "ancestor_of", "a"),
        ])).AssertOk();

        Assert.Equal(["b", "c", "d"], _graph.Related("a", "ancestor_of").AssertOk().Select(answer => answer.Concept));
        Assert.Equal(["b"], _graph.Related("a", "ancestor_of", new RelatedOptions(MaxDepth: 0)).AssertOk().Select(answer => answer.Concept));
        Assert.Equal(["b", "c"], _graph.Related("a", "ancestor_of", new RelatedOptions(MaxDepth: 1)).AssertOk().Select(answer => answer.Concept));
        Assert.Equal(["b", "c"], _graph.Related("a", "ancestor_of", new RelatedOptions(Limit: 2)).AssertOk().Select(answer => answer.Concept));

        Answer far = _graph.Related("a", "ancestor_of").AssertOk().Single(answer => answer.Concept == "d");
        Assert.Equal(3, far.Proof.Facts.Count);
        Assert.Equal(["transitive(ancestor_of)"], far.Proof.Rules);
    }

    // Transitivity took its middles from the answers found at the whole depth, some a rule deep
    // already, so a proof could nest one rule more than max_depth allows: a q b, b q c ⇒ a r c (one
    // rule), then a r c, c r d ⇒ a r d by transitivity (two) was answered at max depth 1.
    [Fact]
    public async Task Transitivity_keeps_proofs_within_max_depth()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("q"))).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("r", Transitive: true, Compositions: [new Composition("q", "q")]))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("a", "q", "b"), new FactInput("b", "q", "c"), new FactInput("c", "r", "d")])).AssertOk();

        Assert.Equal(["c"], _graph.Related("a", "r", new RelatedOptions(MaxDepth: 1)).AssertOk().Select(answer => answer.Concept));
        Answer far = _graph.Related("a", "r", new RelatedOptions(MaxDepth: 2)).AssertOk().Single(answer => answer.Concept == "d");
        Assert.Equal(["q ∘ q ⇒ r", "transitive(r)"], far.Proof.Rules);
    }

    // A question met again lower in its own proof, at a smaller depth, answered nothing there: it
    // was cut as a cycle, though the smaller depth already ends that recursion, and the reply did
    // not say anything was left out. Here r ⇐ s ∘ t and s ⇐ r ∘ u, so c r z needs c s y, which
    // needs c r x one depth lower.
    [Fact]
    public async Task A_question_met_again_at_a_smaller_depth_is_answered_there()
    {
        foreach (string name in new[] { "r", "s", "t", "u" })
        {
            (await _graph.DefineRelationAsync(new RelationSpec(name))).AssertOk();
        }

        (await _graph.DefineRelationAsync(new RelationSpec("r", Compositions: [new Composition("s", "t")]))).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("s", Compositions: [new Composition("r", "u")]))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("c", "r", "x"), new FactInput("x", "u", "y"), new FactInput("y", "t", "z")])).AssertOk();

        RelatedAnswers answers = _graph.Related("c", "r", new RelatedOptions(MaxDepth: 2)).AssertOk();
        Assert.Equal([("x", AnswerKind.Stored), ("z", AnswerKind.Derived)], answers.Select(answer => (answer.Concept, answer.Kind)));
        Assert.Equal(["r ∘ u ⇒ s", "s ∘ t ⇒ r"], answers[1].Proof.Rules);
        Assert.False(answers.Truncated);
        Assert.Equal(["x"], _graph.Related("c", "r", new RelatedOptions(MaxDepth: 1)).AssertOk().Select(answer => answer.Concept));
    }

    // A relation whose inverse is symmetric holds the same pairs as it, so it is symmetric too:
    // "bob spouse_of alice" answers married_to and spouse_of from both ends.
    [Fact]
    public async Task The_inverse_of_a_symmetric_relation_answers_from_either_end()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("married_to", Symmetric: true, InverseOf: "spouse_of"))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("bob", "spouse_of", "alice")])).AssertOk();

        foreach ((string from, string relation, string to) in new[]
        {
            ("bob", "married_to", "alice"), ("alice", "married_to", "bob"), ("bob", "spouse_of", "alice"), ("alice", "spouse_of", "bob"),
        })
        {
            Answer answer = Assert.Single(_graph.Related(from, relation).AssertOk());
            Assert.Equal(to, answer.Concept);
            Assert.NotEqual(AnswerKind.Learned, answer.Kind);
        }

        Answer reversed = Assert.Single(_graph.Related("alice", "spouse_of").AssertOk());
        Assert.Equal(["symmetric(married_to)", "spouse_of = inverse(married_to)"], reversed.Proof.Rules);
        // The inverse's fact is read as the symmetric relation's first, then turned by its symmetry
        // (it was turned by married_to's symmetry while still a spouse_of fact).
        Answer throughInverse = Assert.Single(_graph.Related("bob", "married_to").AssertOk());
        Assert.Equal(["married_to = inverse(spouse_of)", "symmetric(married_to)"], throughInverse.Proof.Rules);
    }

    // Every derived self-answer was dropped as an artifact of a cycle, so a concept's own loop read
    // through an inverse (a likes a, asked as liked_by) answered nothing, in related and relate.
    // One proven through other concepts still is dropped.
    [Fact]
    public async Task A_self_loop_read_through_an_inverse_answers_and_a_cycle_does_not()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("likes", InverseOf: "liked_by", Transitive: true))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("a", "likes", "a"), new FactInput("b", "likes", "c"), new FactInput("c", "likes", "b")])).AssertOk();

        Answer self = Assert.Single(_graph.Related("a", "liked_by").AssertOk());
        Assert.Equal(("a", AnswerKind.Derived), (self.Concept, self.Kind));
        Assert.Equal(["liked_by = inverse(likes)"], self.Proof.Rules);
        Assert.Equal([("likes", AnswerKind.Stored), ("liked_by", AnswerKind.Derived)], _graph.Relate("a", "a", k: 0).AssertOk().Graph.Select(r => (r.Relation, r.Kind)));
        Assert.Equal(["c"], _graph.Related("b", "liked_by").AssertOk().Select(answer => answer.Concept));
    }

    // Proofs named properties that are not declared: transitivity of the relation asked when only
    // its inverse is transitive, and a symmetry that cannot reverse the relation's facts without
    // the inverse step when the symmetric relation is its inverse.
    [Fact]
    public async Task Proofs_name_the_relation_each_property_is_declared_on()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("part_of", Transitive: true))).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("has_part", InverseOf: "part_of"))).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("married_to", Symmetric: true))).AssertOk();
        (await _graph.AddFactsAsync([
            new FactInput("wheel", "part_of", "car"), new FactInput("car", "part_of", "fleet"),
            new FactInput("a", "p", "m"), new FactInput("m", "q", "b"),
        ])).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("spouse_of", InverseOf: "married_to", Compositions: [new Composition("p", "q")]))).AssertOk();

        Answer wheel = _graph.Related("fleet", "has_part").AssertOk().Single(answer => answer.Concept == "wheel");
        Assert.Equal(["has_part = inverse(part_of)", "transitive(part_of)"], wheel.Proof.Rules);
        Answer spouse = Assert.Single(_graph.Related("b", "spouse_of").AssertOk());
        Assert.Equal("a", spouse.Concept);
        Assert.Equal(["p ∘ q ⇒ spouse_of", "symmetric(married_to)", "spouse_of = inverse(married_to)"], spouse.Proof.Rules);
    }

    // A fact of a symmetric inverse read the other way took the inverse step twice, around the
    // symmetry: a rule more than the proof needs, which lost ties with proofs no longer.
    [Fact]
    public void A_fact_of_a_symmetric_inverse_is_read_with_one_inverse_step()
    {
        const int P = 0, Q = 1, Married = 2, Spouse = 3, C = 0, M = 1, X = 2;
        var relations = new RelationTable();
        relations.Put(new RelationRecord(P, "p", null, Symmetric: false, Transitive: false, InverseId: -1, []));
        relations.Put(new RelationRecord(Q, "q", null, Symmetric: false, Transitive: false, InverseId: -1, []));
        relations.Put(new RelationRecord(Married, "married_to", null, Symmetric: true, Transitive: false, InverseId: Spouse, [(P, Q)]));
        relations.Put(new RelationRecord(Spouse, "spouse_of", null, Symmetric: false, Transitive: false, InverseId: Married, []));
        var edges = new EdgeIndex();
        edges.Put(new EdgeRecord(0, C, P, M, 1f, null));
        edges.Put(new EdgeRecord(1, M, Q, X, 1f, null));

        Derivation proof = new Reasoner(relations, edges).Related(C, Spouse, maxDepth: 1)[X];

        Assert.Equal(3, proof.Steps);
        Assert.Equal(["p ∘ q ⇒ married_to", "symmetric(married_to)", "spouse_of = inverse(married_to)"], proof.Rules);
    }

    // A rule whose first premise is the relation it concludes (r ∘ r ⇒ r, r ∘ q ⇒ r) used to be
    // pruned as a cycle: its premise is the question being asked. Asked from the other end through
    // an inverse, a right-recursive rule is pruned the same way.
    [Fact]
    public async Task Recursive_composition_rules_apply_from_both_ends()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("anc", Compositions: [new Composition("anc", "anc")]))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("a", "anc", "b"), new FactInput("b", "anc", "c"), new FactInput("c", "anc", "d")])).AssertOk();
        Assert.Equal(["b", "c", "d"], _graph.Related("a", "anc").AssertOk().Select(answer => answer.Concept).Order());
        Assert.Equal(["b"], _graph.Related("a", "anc", new RelatedOptions(MaxDepth: 0)).AssertOk().Select(answer => answer.Concept));

        // Depth still bounds a recursive rule's proofs: on a chain u0 → … → u6, depth 2 nests the
        // rule twice, which reaches four hops (two of two), not the five or six a middle proved with
        // the whole budget would add.
        (await _graph.AddFactsAsync([.. Enumerable.Range(0, 6).Select(i => new FactInput($"u{i}", "anc", $"u{i + 1}"))])).AssertOk();
        Assert.Equal(["u1", "u2", "u3", "u4"], _graph.Related("u0", "anc", new RelatedOptions(MaxDepth: 2)).AssertOk().Select(answer => answer.Concept).Order());
        Assert.Equal(["u1", "u2", "u3", "u4", "u5", "u6"], _graph.Related("u0", "anc", new RelatedOptions(MaxDepth: 3)).AssertOk().Select(answer => answer.Concept).Order());

        // Left-recursive through another relation: a r b, b q c, c q d ⇒ a r c, a r d.
        (await _graph.AddFactsAsync([new FactInput("a", "r", "b"), new FactInput("b", "q", "c"), new FactInput("c", "q", "d")])).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("r", Compositions: [new Composition("r", "q")]))).AssertOk();
        Assert.Equal(["b", "c", "d"], _graph.Related("a", "r").AssertOk().Select(answer => answer.Concept).Order());

        // Right-recursive, asked through the inverse: p parent_of q, q ancestor_of x ⇒ p ancestor_of x.
        (await _graph.AddFactsAsync([new FactInput("g", "parent_of", "h"), new FactInput("h", "ancestor_of", "i")])).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("ancestor_of", InverseOf: "descendant_of", Compositions: [new Composition("parent_of", "ancestor_of")]))).AssertOk();
        Assert.Equal(["i"], _graph.Related("g", "ancestor_of").AssertOk().Select(answer => answer.Concept));
        Assert.Equal(["g", "h"], _graph.Related("i", "descendant_of").AssertOk().Select(answer => answer.Concept).Order());
        Answer viaRule = _graph.Related("i", "descendant_of").AssertOk().Single(answer => answer.Concept == "g");
        Assert.Equal(AnswerKind.Derived, viaRule.Kind);
        Assert.Contains("parent_of ∘ ancestor_of ⇒ ancestor_of", viaRule.Proof.Rules);
    }

    [Fact]
    public async Task Changing_an_inverse_releases_the_previous_partner()
    {
        (await _graph.DefineRelationAsync(new RelationSpec("parent_of", InverseOf: "child_of"))).AssertOk();
        (await _graph.DefineRelationAsync(new RelationSpec("parent_of", InverseOf: "offspring_of"))).AssertOk();
        Assert.Null(_graph.GetRelation("child_of").AssertOk().InverseOf);
        Assert.Equal("parent_of", _graph.GetRelation("offspring_of").AssertOk().InverseOf);

        (await _graph.DefineRelationAsync(new RelationSpec("parent_of", InverseOf: ""))).AssertOk();
        Assert.Null(_graph.GetRelation("offspring_of").AssertOk().InverseOf);
        Assert.Null(_graph.GetRelation("parent_of").AssertOk().InverseOf);
    }

    [Fact]
    public async Task Concepts_without_vectors_get_deterministic_unit_vectors_and_updates_keep_what_is_not_given()
    {
        (await _graph.UpsertConceptsAsync([new ConceptInput("a", Metadata: new Dictionary<string, string> { ["k"] = "v" })])).AssertOk();
        float[] vector = _graph.GetConcept("a").AssertOk().Vector;
        Assert.Equal(NameVector.For("a", 4), vector);
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => (double)x * x)), 5);

        Assert.Equal(new WriteSummary(0, 1), (await _graph.UpsertConceptsAsync([new ConceptInput("a")])).AssertOk());
        (await _graph.UpsertConceptsAsync([new ConceptInput("a", [1, 2, 3, 4])])).AssertOk();
        ConceptInfo updated = _graph.GetConcept("a").AssertOk();
        Assert.Equal([1f, 2, 3, 4], updated.Vector);
        Assert.Equal("v", updated.Metadata["k"]);
    }
}
