using AssocDB.Engine.Model;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Answers "which x satisfy c r x?" from stored edges and relation properties, by bounded backward
/// chaining. A query node is (concept, relation, direction): forward asks for x with <c>c r x</c>,
/// backward for x with <c>x r c</c>. A node is expanded by
/// <list type="bullet">
/// <item>stored edges of r in the asked direction (kind stored), and in the other direction when r
/// is symmetric;</item>
/// <item>stored edges of r's inverse r′ read the other way (<c>x r′ c ⇒ c r x</c>);</item>
/// <item>composition rules <c>r1 ∘ r2 ⇒ r</c> (and those of r′, read through the inverse), each
/// premise solved as a sub-query with one rule fewer to spend;</item>
/// <item>transitivity, as repeated composition of r with itself.</item>
/// </list>
/// The depth budget bounds rule applications per proof; a node already on the current chain answers
/// nothing (so cycles terminate); a work bound caps the edges visited per query.
/// </summary>
internal sealed class Reasoner(RelationTable relations, EdgeIndex edges)
{
    /// <summary>Edges visited per query before it stops expanding, so one query cannot monopolize a core.</summary>
    public const int MaxWork = 2_000_000;

    private readonly HashSet<(int Concept, int Relation, bool Forward)> _onChain = [];
    private int _work;

    /// <summary>Whether the last query stopped expanding at the work bound.</summary>
    public bool Truncated { get; private set; }

    /// <summary>Solves <c>concept relation ?</c>; the reasoner is single-use per thread and query.</summary>
    public Dictionary<int, Derivation> Related(int concept, int relation, int maxDepth)
    {
        _onChain.Clear();
        _work = 0;
        Truncated = false;
        Dictionary<int, Derivation> answers = Solve(concept, relation, forward: true, maxDepth);
        if (answers.TryGetValue(concept, out Derivation? self) && self.Kind != AnswerKind.Stored)
        {
            // A derived self-answer is an artifact of a cycle (a r b, b r a under transitivity), not news.
            answers.Remove(concept);
        }

        return answers;
    }

    private Dictionary<int, Derivation> Solve(int concept, int relation, bool forward, int budget)
    {
        var results = new Dictionary<int, Derivation>();
        RelationRecordView r = View(relation);
        (int, int, bool) node = Canonical(concept, r, forward);
        if (!_onChain.Add(node))
        {
            return results;
        }

        try
        {
            AddStored(results, concept, r, forward);
            if (budget <= 0 || Truncated)
            {
                return results;
            }

            foreach (bool direction in r.Symmetric ? [forward, !forward] : new[] { forward })
            {
                ApplyCompositions(results, concept, r.Id, direction, budget, viaInverse: null, symmetric: direction != forward ? r.Name : null);
                if (r.InverseId >= 0 && r.InverseId != r.Id)
                {
                    ApplyCompositions(results, concept, r.InverseId, !direction, budget, viaInverse: r, symmetric: direction != forward ? r.Name : null);
                }
            }

            if (r.Transitive || (r.InverseId >= 0 && relations[r.InverseId].Transitive))
            {
                ApplyTransitivity(results, relation, forward, budget);
            }

            return results;
        }
        finally
        {
            _onChain.Remove(node);
        }
    }

    private void AddStored(Dictionary<int, Derivation> results, int concept, RelationRecordView r, bool forward)
    {
        ReadOnlySpan<int> incident = edges.EdgesOf(concept);
        _work += incident.Length;
        if (_work > MaxWork)
        {
            Truncated = true;
        }

        int inverse = r.InverseId;
        bool inverseSymmetric = inverse >= 0 && relations[inverse].Symmetric;
        foreach (int edge in incident)
        {
            int edgeRelation = edges.Relation(edge);
            int head = edges.Head(edge), tail = edges.Tail(edge);
            if (edgeRelation == r.Id)
            {
                if (forward ? head == concept : tail == concept)
                {
                    Offer(results, forward ? tail : head, Derivation.Stored(edge));
                }

                if (r.Symmetric && (forward ? tail == concept : head == concept))
                {
                    Offer(results, forward ? head : tail, Derivation.Rule($"symmetric({r.Name})", Derivation.Stored(edge)));
                }
            }

            if (inverse >= 0 && inverse != r.Id && edgeRelation == inverse)
            {
                string rule = InverseRule(r);
                if (forward ? tail == concept : head == concept)
                {
                    Offer(results, forward ? head : tail, Derivation.Rule(rule, Derivation.Stored(edge)));
                }

                if (inverseSymmetric && (forward ? head == concept : tail == concept))
                {
                    Offer(results, forward ? tail : head, Derivation.Rule(rule, Derivation.Rule($"symmetric({relations[inverse].Name})", Derivation.Stored(edge))));
                }
            }
        }
    }

    /// <summary>
    /// Applies the rules <c>r1 ∘ r2 ⇒ target</c>. Forward: <c>c r1 y, y r2 x</c>; backward:
    /// <c>x r1 y, y r2 c</c>. When <paramref name="viaInverse"/> is set, target is the inverse of the
    /// asked relation and each answer is read back through it.
    /// </summary>
    private void ApplyCompositions(
        Dictionary<int, Derivation> results, int concept, int target, bool forward, int budget, RelationRecordView? viaInverse, string? symmetric)
    {
        var rules = relations[target].Compositions;
        if (rules.Count == 0)
        {
            return;
        }

        string targetName = relations[target].Name;
        foreach ((int first, int second) in rules)
        {
            string rule = $"{relations[first].Name} ∘ {relations[second].Name} ⇒ {targetName}";
            (int near, int far) = forward ? (first, second) : (second, first);
            foreach ((int middle, Derivation toMiddle) in Solve(concept, near, forward, budget - 1))
            {
                foreach ((int answer, Derivation toAnswer) in Solve(middle, far, forward, budget - 1))
                {
                    Derivation derivation = forward
                        ? Derivation.Rule(rule, toMiddle, toAnswer)
                        : Derivation.Rule(rule, toAnswer, toMiddle);
                    if (viaInverse is { } asked)
                    {
                        derivation = Derivation.Rule(InverseRule(asked), derivation);
                    }

                    if (symmetric is not null)
                    {
                        derivation = Derivation.Rule($"symmetric({symmetric})", derivation);
                    }

                    Offer(results, answer, derivation);
                }
            }
        }
    }

    private void ApplyTransitivity(Dictionary<int, Derivation> results, int relation, bool forward, int budget)
    {
        string rule = $"transitive({relations[relation].Name})";
        foreach ((int middle, Derivation toMiddle) in results.ToArray())
        {
            foreach ((int answer, Derivation onward) in Solve(middle, relation, forward, budget - 1))
            {
                Offer(results, answer, forward ? Derivation.Rule(rule, toMiddle, onward) : Derivation.Rule(rule, onward, toMiddle));
            }
        }
    }

    private static void Offer(Dictionary<int, Derivation> results, int concept, Derivation candidate)
    {
        if (!results.TryGetValue(concept, out Derivation? current) || candidate.IsBetterThan(current))
        {
            results[concept] = candidate;
        }
    }

    private string InverseRule(RelationRecordView asked) => $"{asked.Name} = inverse({relations[asked.InverseId].Name})";

    private RelationRecordView View(int relation)
    {
        var record = relations[relation];
        return new RelationRecordView(record.Id, record.Name, record.Symmetric, record.Transitive, record.InverseId);
    }

    /// <summary>(c, r, forward) and (c, inverse(r), backward) ask the same thing; a symmetric relation has no direction.</summary>
    private static (int, int, bool) Canonical(int concept, RelationRecordView r, bool forward)
    {
        if (r.Symmetric)
        {
            return (concept, r.Id, true);
        }

        return r.InverseId >= 0 && r.InverseId < r.Id ? (concept, r.InverseId, !forward) : (concept, r.Id, forward);
    }

    private sealed record RelationRecordView(int Id, string Name, bool Symmetric, bool Transitive, int InverseId);
}

/// <summary>
/// A proof tree: a stored edge, or a rule applied to premises. Proofs are compared by kind (stored
/// first) then by the number of rules applied, so every answer carries its shortest proof found.
/// </summary>
internal sealed class Derivation
{
    private Derivation(int edge, string? rule, Derivation[] premises, int steps)
    {
        Edge = edge;
        RuleText = rule;
        Premises = premises;
        Steps = steps;
    }

    /// <summary>The stored edge, or −1 for a rule application.</summary>
    public int Edge { get; }

    public string? RuleText { get; }

    public Derivation[] Premises { get; }

    /// <summary>Rules applied in the whole tree.</summary>
    public int Steps { get; }

    public AnswerKind Kind => RuleText is null ? AnswerKind.Stored : AnswerKind.Derived;

    public static Derivation Stored(int edge) => new(edge, null, [], 0);

    public static Derivation Rule(string rule, params Derivation[] premises) =>
        new(-1, rule, premises, 1 + premises.Sum(premise => premise.Steps));

    public bool IsBetterThan(Derivation other) => Steps < other.Steps;

    /// <summary>The stored edges used (left to right, each once) and the rules applied (innermost first, each once).</summary>
    public (List<int> Edges, List<string> Rules) Flatten()
    {
        var edgeList = new List<int>();
        var rules = new List<string>();
        Walk(this, edgeList, rules);
        return (edgeList, rules);

        static void Walk(Derivation node, List<int> edgeList, List<string> rules)
        {
            if (node.RuleText is null)
            {
                if (!edgeList.Contains(node.Edge))
                {
                    edgeList.Add(node.Edge);
                }

                return;
            }

            foreach (Derivation premise in node.Premises)
            {
                Walk(premise, edgeList, rules);
            }

            if (!rules.Contains(node.RuleText))
            {
                rules.Add(node.RuleText);
            }
        }
    }
}
