using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards that no proof search runs away while it holds the collection's read lock (a waiting writer
// then blocks every new reader too): every unit of work, not only the edges visited, is charged to
// one bound per request, relate included, and a question asked again is solved once. Past the
// bound a request returns the answers found so far, as the protocol documents. Without the bound
// (or, for the first, without solving a question once) the first two searches ran for over a
// minute, so they carry a cancellation that fails them then instead of hanging the run; it bounds
// nothing they assert.
public sealed class WorkBoundTests : DatabaseTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(1);

    // Each of 7 relations is concluded by all 49 compositions of them, asked about a concept with no
    // facts to depth 8: every node asked the same 7 near premises once per rule, about 6!·7⁸
    // sub-queries in all. Solved once, the whole search fits well within the bound.
    [Fact]
    public void A_premise_shared_by_several_rules_is_solved_once()
    {
        using var hangGuard = new CancellationTokenSource(HangGuard);
        var reasoner = new Reasoner(ComposedEveryWay(7), new EdgeIndex(), cancellationToken: hangGuard.Token);

        Assert.Empty(reasoner.Related(0, 0, maxDepth: 8));
        Assert.False(reasoner.Truncated);
    }

    // Each question solved once, a rule set can still outgrow the bound: 64 such relations try
    // 64 · 4,096 rules at each depth, to the deepest allowed. None visits an edge, so only the
    // questions and rules charged stop it.
    [Fact]
    public void Sub_queries_that_visit_no_edge_still_spend_the_work_bound()
    {
        using var hangGuard = new CancellationTokenSource(HangGuard);
        var reasoner = new Reasoner(ComposedEveryWay(64), new EdgeIndex(), cancellationToken: hangGuard.Token);

        Assert.Empty(reasoner.Related(0, 0, Collection.MaxRelatedDepth));
        Assert.True(reasoner.Truncated);
    }

    // A related query cut short by the bound said nothing of it; its reply now says so.
    [Fact]
    public async Task A_related_query_cut_by_the_bound_says_so()
    {
        // 16 relations, each concluded by every composition of two of them, and 4 concepts each
        // related to the others by all of them: each of the 64 questions of a depth joins 256
        // rules over 3 middles of 3 answers, at each of the 17 depths.
        Collection graph = Db.Create(dimension: 4);
        string[] names = [.. Enumerable.Range(0, 16).Select(i => $"r{i}")];
        foreach (string name in names)
        {
            (await graph.DefineRelationAsync(new RelationSpec(name))).AssertOk();
        }

        Composition[] everyPair = [.. names.SelectMany(first => names.Select(second => new Composition(first, second)))];
        foreach (string name in names)
        {
            (await graph.DefineRelationAsync(new RelationSpec(name, Compositions: everyPair))).AssertOk();
        }

        string[] concepts = ["x", "y", "z", "w"];
        (await graph.AddFactsAsync([.. concepts.SelectMany(head => concepts.Where(tail => tail != head)
            .SelectMany(tail => names.Select(relation => new FactInput(head, relation, tail))))])).AssertOk();
        using var hangGuard = new CancellationTokenSource(HangGuard);

        Assert.True(graph.Related("x", "r0", new RelatedOptions(MaxDepth: Collection.MaxRelatedDepth), hangGuard.Token).AssertOk().Truncated);
        Assert.False(graph.Related("x", "r0", new RelatedOptions(MaxDepth: 0), hangGuard.Token).AssertOk().Truncated);
    }

    // Relate asks one query per relation, and each read all of a's edges: at a hub (FB15k-237's
    // most connected entity has 7,614 edges over its 237 relations) that spent the work bound before
    // any rule was tried. Here 2,000 relations times a's 2,002 edges stopped relate about halfway,
    // and the derived relation checked last was left out. A hub's edges are grouped by relation
    // once per request.
    [Fact]
    public async Task Relate_at_a_hub_reads_its_edges_once()
    {
        const int Relations = 2_000;
        string last = $"b{Relations - 1}";
        Collection graph = Db.Create(dimension: 4);
        (await graph.AddFactsAsync([.. Enumerable.Range(0, Relations).Select(i => new FactInput("a", $"r{i}", $"b{i}"))])).AssertOk();
        (await graph.DefineRelationAsync(new RelationSpec("step"))).AssertOk();
        (await graph.DefineRelationAsync(new RelationSpec("two_steps", Compositions: [new Composition("step", "step")]))).AssertOk();
        (await graph.AddFactsAsync([new FactInput("a", "step", "m"), new FactInput("m", "step", last)])).AssertOk();

        RelateResult related = graph.Relate("a", last, k: 0).AssertOk();

        Assert.False(related.Truncated);
        Assert.Equal([($"r{Relations - 1}", AnswerKind.Stored), ("two_steps", AnswerKind.Derived)], related.Graph.Select(relation => (relation.Relation, relation.Kind)));
    }

    // A hub's edges are grouped by relation pair, each group in adjacency order, so a proof is found
    // as a scan finds it: grouped by relation alone, r's edges came before its inverse's, proofs
    // that tie were met in another order, and 64 unrelated facts at each concept changed the proof
    // of n8 (its rules listed in another order).
    [Fact]
    public async Task Unrelated_facts_at_hubs_do_not_change_a_proof()
    {
        async Task<string> Proofs(string name, bool hubs)
        {
            Collection graph = Db.Create(name, dimension: 4);
            (await graph.DefineRelationAsync(new RelationSpec("part_of", Symmetric: true, Transitive: true))).AssertOk();
            (await graph.DefineRelationAsync(new RelationSpec("has_part", InverseOf: "part_of", Compositions: [new Composition("has_part", "has_part")]))).AssertOk();
            (await graph.AddFactsAsync([
                new FactInput("n27", "part_of", "n0"), new FactInput("n0", "has_part", "n26"), new FactInput("n1", "has_part", "n27"),
                new FactInput("n5", "part_of", "n1"), new FactInput("n21", "part_of", "n26"), new FactInput("n5", "part_of", "n21"),
                new FactInput("n5", "has_part", "n8")])).AssertOk();
            if (hubs)
            {
                string[] concepts = ["n0", "n1", "n5", "n8", "n21", "n26", "n27"];
                (await graph.AddFactsAsync([.. concepts.SelectMany(c => Enumerable.Range(0, 64).Select(i => new FactInput(c, "unrelated", $"x{i}")))])).AssertOk();
            }

            return string.Join("\n", graph.Related("n0", "has_part", new RelatedOptions(MaxDepth: 2)).AssertOk().Select(answer => $"{answer.Concept} {answer.Kind} {answer.Proof}"));
        }

        Assert.Equal(await Proofs("plain", hubs: false), await Proofs("hubs", hubs: true));
    }

    // Relate's queries share one work bound. Here each of 60 relations is concluded by s ∘ tᵢ, its
    // own tᵢ, and a has 20,000 s edges, so every query asks 20,000 questions of its own (one shared
    // by all would be solved once) and the bound runs out about halfway (a fresh bound per relation
    // let the work grow with the relations times the bound). The relations stored between a and b
    // are checked first, so a stored fact is never left out.
    [Fact]
    public async Task Relate_shares_one_work_bound_and_checks_stored_relations_first()
    {
        const int Relations = 60;
        string last = $"b{Relations - 1}";
        Collection graph = Db.Create(dimension: 4);
        // One fact of each tᵢ, away from a, creates them all in one write.
        (await graph.AddFactsAsync([new FactInput("n", "s", "o"), .. Enumerable.Range(0, Relations).Select(i => new FactInput("n", $"t{i}", "o"))])).AssertOk();
        for (int i = 0; i < Relations; i++)
        {
            (await graph.DefineRelationAsync(new RelationSpec($"r{i}", Compositions: [new Composition("s", $"t{i}")]))).AssertOk();
        }

        (await graph.AddFactsAsync([
            .. Enumerable.Range(0, Relations).Select(i => new FactInput("a", $"r{i}", $"b{i}")),
            .. Enumerable.Range(0, 20_000).Select(i => new FactInput("a", "s", $"m{i}"))])).AssertOk();

        RelateResult cut = graph.Relate("a", last, k: 0).AssertOk();

        RelatedRelation stored = Assert.Single(cut.Graph);
        Assert.Equal(($"r{Relations - 1}", AnswerKind.Stored, true), (stored.Relation, stored.Kind, cut.Truncated));
    }

    // A concept of over a million edges spends the work bound reading them (once to scan, once to
    // group them by relation), so relate left out facts stored between a and b that it had not
    // reached, though it said those were always checked; and for a stored b r a it put r first,
    // not r's inverse, which is what holds from a to b. Stored facts between them are now answered
    // from relate's own scan of the edges between a and b.
    [Fact]
    public async Task Relate_lists_every_fact_stored_between_a_and_b_however_large_a_is()
    {
        Collection graph = Db.Create(dimension: 4);
        (await graph.DefineRelationAsync(new RelationSpec("under", InverseOf: "over"))).AssertOk();
        (await graph.AddFactsAsync([new FactInput("a", "r0", "b"), new FactInput("a", "r1", "b"), new FactInput("a", "r2", "b"), new FactInput("b", "over", "a")])).AssertOk();
        const int Spokes = 1_100_000, SpokeRelations = 1_100;
        for (int start = 0; start < Spokes; start += 100_000)
        {
            (await graph.AddFactsAsync([.. Enumerable.Range(start, 100_000).Select(i => new FactInput("a", $"spoke{i % SpokeRelations}", $"x{i / SpokeRelations}"))])).AssertOk();
        }

        RelateResult related = graph.Relate("a", "b", k: 0).AssertOk();

        Assert.True(related.Truncated);
        Assert.Equal(["r0", "r1", "r2"], related.Graph.Where(relation => relation.Kind == AnswerKind.Stored).Select(relation => relation.Relation).Order(StringComparer.Ordinal));
        Assert.Contains(related.Graph, relation => relation is { Relation: "under", Kind: AnswerKind.Derived });
    }

    // A proof through compositions doubles with each: rᵢ = rᵢ₋₁ ∘ rᵢ₋₁ makes r11 2,048 steps of
    // r0, and 1,000 answers at the end of such a chain were 2 M facts of proof, built under the read
    // lock for a reply that holds a few hundred thousand. Listing each proof's facts also searched
    // a list per fact: 2 M steps an answer. Now the proofs of one call hold at most
    // MaxProofFacts facts (the answers after are left out, marked truncated), each listed in
    // steps proportional to its size.
    [Fact]
    public async Task The_proofs_of_a_related_query_are_bounded_in_size_and_listed_in_linear_time()
    {
        const int Depth = 11, Chain = 1 << Depth, Answers = 1000;
        Collection graph = await DoublingsAsync(Depth);
        (await graph.AddFactsAsync([
            .. Enumerable.Range(0, Chain - 1).Select(i => new FactInput($"u{i}", "r0", $"u{i + 1}")),
            .. Enumerable.Range(0, Answers).Select(j => new FactInput($"u{Chain - 1}", "r0", $"v{j:0000}"))])).AssertOk();
        using var hangGuard = new CancellationTokenSource(HangGuard);

        RelatedAnswers answers = graph.Related("u0", $"r{Depth}", new RelatedOptions(MaxDepth: Depth, Limit: Answers), hangGuard.Token).AssertOk();

        Assert.True(answers.Truncated);
        Assert.Equal(Collection.MaxProofFacts / Chain, answers.Count);
        for (int j = 0; j < answers.Count; j++)
        {
            Answer answer = answers[j];
            Assert.Equal($"v{j:0000}", answer.Concept);
            Assert.Equal(Chain, answer.Proof.Facts.Count);
            Assert.Equal(new FactKey("u0", "r0", "u1"), answer.Proof.Facts[0]);
            Assert.Equal(new FactKey($"u{Chain - 1}", "r0", answer.Concept), answer.Proof.Facts[^1]);
            Assert.Equal(Depth, answer.Proof.Rules.Count);
        }
    }

    // Proofs that tie on kind, steps and confidence are told apart by their facts, listed for both:
    // here 2,000 proofs of 2,050 steps reach the same answer, each through its own middle, and
    // listing them was charged nothing (about 4 M units of work, gigabytes at depth 16).
    [Fact]
    public async Task Telling_tied_proofs_apart_is_charged_to_the_work_bound()
    {
        const int Depth = 11, Chain = 1 << Depth, Middles = 2_000;
        Collection graph = await DoublingsAsync(Depth);
        (await graph.DefineRelationAsync(new RelationSpec("then"))).AssertOk();
        (await graph.DefineRelationAsync(new RelationSpec("q", Compositions: [new Composition($"r{Depth}", "then")]))).AssertOk();
        (await graph.AddFactsAsync([
            .. Enumerable.Range(0, Chain - 1).Select(i => new FactInput($"u{i}", "r0", $"u{i + 1}")),
            .. Enumerable.Range(0, Middles).SelectMany(j => new[] { new FactInput($"u{Chain - 1}", "r0", $"v{j}"), new FactInput($"v{j}", "then", "x") })])).AssertOk();
        using var hangGuard = new CancellationTokenSource(HangGuard);

        RelatedAnswers answers = graph.Related("u0", "q", new RelatedOptions(MaxDepth: Depth + 1), hangGuard.Token).AssertOk();

        Assert.True(answers.Truncated);
        Assert.Equal("x", Assert.Single(answers).Concept);
    }

    // Relate built a proof for every relation that holds, with no bound on their facts in all: here
    // 600 relations, each proven by the same 2,048 facts. Its proofs now stop at MaxProofFacts.
    [Fact]
    public async Task The_proofs_of_a_relate_call_are_bounded_in_size()
    {
        const int Depth = 11, Chain = 1 << Depth, Relations = 600;
        Collection graph = await DoublingsAsync(Depth);
        for (int k = 0; k < Relations; k++)
        {
            (await graph.DefineRelationAsync(new RelationSpec($"q{k:000}", Compositions: [new Composition($"r{Depth - 1}", $"r{Depth - 1}")]))).AssertOk();
        }

        (await graph.AddFactsAsync([.. Enumerable.Range(0, Chain).Select(i => new FactInput($"u{i}", "r0", $"u{i + 1}"))])).AssertOk();
        using var hangGuard = new CancellationTokenSource(HangGuard);

        RelateResult related = graph.Relate("u0", $"u{Chain}", options: new RelatedOptions(MaxDepth: Depth), cancellationToken: hangGuard.Token).AssertOk();

        Assert.True(related.Truncated);
        Assert.Equal(Collection.MaxProofFacts / Chain, related.Graph.Count);
        Assert.All(related.Graph, relation => Assert.Equal(Chain, relation.Proof.Facts.Count));
        Assert.Equal("q000", related.Graph[0].Relation);
    }

    // Reading a learned inverse costs no depth, so nothing bounded a chain of them (r0 = inverse(r1),
    // r1 = inverse(r2), …): each hop nested a question, and 50,000 overflowed the stack, ending
    // the process. A chain now follows at most MaxLearnedInverseHops: a fact 15 hops away answers,
    // one 17 away does not (an odd count of hops reads r0 from a fact's tail).
    [Fact]
    public void A_chain_of_learned_inverses_is_followed_a_bounded_number_of_hops()
    {
        const int Chain = 50_000, A = 0, Near = 1, Far = 2;
        var relations = new RelationTable();
        var statistics = new RuleStatistics(10, 10, 0.99, 0.99, 1);
        for (int id = 0; id < Chain; id++)
        {
            LearnedRule[] inverse = id + 1 < Chain ? [new LearnedRule(PropertyKind.Inverse, id + 1, -1, -1, statistics)] : [];
            relations.Put(new RelationRecord(id, $"r{id}", null, Symmetric: false, Transitive: false, InverseId: -1, [], Learned: inverse));
        }

        var edges = new EdgeIndex();
        edges.Put(new EdgeRecord(0, Near, Reasoner.MaxLearnedInverseHops - 1, A, 1f, null));
        edges.Put(new EdgeRecord(1, Far, Reasoner.MaxLearnedInverseHops + 1, A, 1f, null));

        Dictionary<int, Derivation> answers = new Reasoner(relations, edges).Related(A, 0, maxDepth: 0);

        Assert.Equal([Near], answers.Keys);
        Assert.Equal(Math.Pow(0.99, Reasoner.MaxLearnedInverseHops - 1), answers[Near].Confidence, 9);
    }

    // Past the bound, questions already solved still answered, and the joins over them went on for
    // every rule left: here t ⇐ nₖ ∘ f for 256 relations nₖ, all asked first (as relate asks every
    // relation at depth 0), each rule joining c's 5 middles with their 10,000 f answers. The bound
    // stopped the search at about the 14th rule and the others joined on, to 19 times the bound.
    [Fact]
    public void Joins_stop_at_the_work_bound_though_their_premises_are_solved()
    {
        const int Rules = 256, Middles = 5, Answers = 10_000, C = 0, F = Rules, T = Rules + 1;
        var relations = new RelationTable();
        for (int k = 0; k < Rules; k++)
        {
            relations.Put(new RelationRecord(k, $"n{k}", null, Symmetric: false, Transitive: false, InverseId: -1, []));
        }

        relations.Put(new RelationRecord(F, "f", null, Symmetric: false, Transitive: false, InverseId: -1, []));
        relations.Put(new RelationRecord(T, "t", null, Symmetric: false, Transitive: false, InverseId: -1, [.. Enumerable.Range(0, Rules).Select(k => (k, F))]));
        var edges = new EdgeIndex();
        int edge = 0;
        for (int middle = 1; middle <= Middles; middle++)
        {
            for (int k = 0; k < Rules; k++)
            {
                edges.Put(new EdgeRecord(edge++, C, k, middle, 1f, null));
            }

            for (int answer = 0; answer < Answers; answer++)
            {
                edges.Put(new EdgeRecord(edge++, middle, F, Middles + 1 + answer, 1f, null));
            }
        }

        using var hangGuard = new CancellationTokenSource(HangGuard);
        var reasoner = new Reasoner(relations, edges, cancellationToken: hangGuard.Token);

        Assert.NotEmpty(reasoner.Related(C, [.. Enumerable.Range(0, Rules), T], maxDepth: 1)[^1]);
        Assert.True(reasoner.Truncated);
        Assert.InRange(reasoner.WorkSpent, Reasoner.MaxWork, Reasoner.MaxWork + Answers + Rules);
    }

    // The hop count of learned inverses ran on into a composition's premises, so a question reached
    // at the end of a long chain had its premises' own chains cut, and what it found without them
    // was reused for the question asked directly: here c t0 ? reaches c r ? after 14 learned
    // inverses, r ⇐ a ∘ b, and m b x needs 3 more, so c r x was missing from both answers.
    [Fact]
    public void A_premises_learned_inverses_are_followed_however_long_the_chain_to_its_rule()
    {
        const int ChainToRule = 14, R = ChainToRule, A = R + 1, B = R + 2, C = 0, Middle = 1, X = 2;
        var statistics = new RuleStatistics(10, 10, 0.99, 0.99, 1);
        LearnedRule[] InverseOf(int other) => [new LearnedRule(PropertyKind.Inverse, other, -1, -1, statistics)];
        var relations = new RelationTable();
        for (int id = 0; id < ChainToRule; id++)
        {
            relations.Put(new RelationRecord(id, $"t{id}", null, Symmetric: false, Transitive: false, InverseId: -1, [], Learned: InverseOf(id + 1)));
        }

        relations.Put(new RelationRecord(R, "r", null, Symmetric: false, Transitive: false, InverseId: -1, [(A, B)]));
        relations.Put(new RelationRecord(A, "a", null, Symmetric: false, Transitive: false, InverseId: -1, []));
        // b = inverse(b1), b1 = inverse(b2), b2 = inverse(b3): m b x holds as x b3 m.
        for (int hop = 0; hop < 3; hop++)
        {
            relations.Put(new RelationRecord(B + hop, $"b{hop}", null, Symmetric: false, Transitive: false, InverseId: -1, [], Learned: InverseOf(B + hop + 1)));
        }

        relations.Put(new RelationRecord(B + 3, "b3", null, Symmetric: false, Transitive: false, InverseId: -1, []));
        var edges = new EdgeIndex();
        edges.Put(new EdgeRecord(0, C, A, Middle, 1f, null));
        edges.Put(new EdgeRecord(1, X, B + 3, Middle, 1f, null));

        Dictionary<int, Derivation>[] answers = new Reasoner(relations, edges).Related(C, [0, R], maxDepth: 1);

        Assert.Equal([X], answers[1].Keys);
        Assert.Equal([X], answers[0].Keys);
    }

    /// <summary>A collection with relations r0 … r<paramref name="depth"/>, each r(i) = r(i−1) ∘ r(i−1):
    /// r(i) holds across 2^i facts of r0 in a row.</summary>
    private async Task<Collection> DoublingsAsync(int depth)
    {
        Collection graph = Db.Create(dimension: 4);
        (await graph.DefineRelationAsync(new RelationSpec("r0"))).AssertOk();
        for (int i = 1; i <= depth; i++)
        {
            (await graph.DefineRelationAsync(new RelationSpec($"r{i}", Compositions: [new Composition($"r{i - 1}", $"r{i - 1}")]))).AssertOk();
        }

        return graph;
    }

    /// <summary>Relations r0 … r(count − 1), each concluded by every composition of two of them.</summary>
    private static RelationTable ComposedEveryWay(int count)
    {
        (int, int)[] everyPair = [.. Enumerable.Range(0, count).SelectMany(first => Enumerable.Range(0, count).Select(second => (first, second)))];
        var relations = new RelationTable();
        for (int id = 0; id < count; id++)
        {
            relations.Put(new RelationRecord(id, $"r{id}", null, Symmetric: false, Transitive: false, InverseId: -1, everyPair));
        }

        return relations;
    }
}
