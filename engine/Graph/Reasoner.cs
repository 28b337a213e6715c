using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

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
/// premise solved as a sub-query with one rule fewer to spend; a recursive rule, whose near
/// premise is the node itself, joins the node's answers so far, round by round;</item>
/// <item>symmetry of r, or of r′ (the inverse of a symmetric relation holds the same pairs);</item>
/// <item>transitivity, as repeated composition of r with itself;</item>
/// <item>when asked to, the same properties learned from data, each with its confidence; answers
/// that need one are of kind learned, scored by the product of the confidences used.</item>
/// </list>
/// The depth budget bounds rule applications per proof; a node already on the current chain answers
/// nothing (so cycles terminate); a work bound caps what one request may do (edges visited,
/// sub-queries asked, rules applied), and the caller's cancellation is checked at every unit of it.
/// Declared properties win: a learned rule the declarations already imply is not applied.
/// </summary>
internal sealed class Reasoner(RelationTable relations, EdgeIndex edges, bool includeLearned = true, CancellationToken cancellationToken = default)
{
    /// <summary>
    /// Units of work per request before it stops expanding: each edge visited, each sub-query asked
    /// and each rule applied costs one. Counting edges alone let sub-queries on concepts without
    /// edges multiply for free, so one request could hold the collection's read lock for minutes.
    /// </summary>
    public const int MaxWork = 2_000_000;

    /// <summary>
    /// Concepts with at least this many edges have them grouped by relation pair when a request
    /// reads them a second time. Relate asks about every relation at a, and proofs ask about many
    /// at a hub: each read all of its edges again (7,614 at FB15k-237's most connected entity,
    /// times its 237 relations, spent most of the work bound before any rule was tried). Below it a
    /// scan costs less than grouping; and a hub read once is only scanned (grouping every hub met
    /// cost hundreds of megabytes in a request that reads 900 of them once).
    /// </summary>
    private const int GroupedDegree = 64;

    private readonly HashSet<(int Concept, int Relation, bool Forward)> _onChain = [];
    private readonly HashSet<int> _readOnce = [];
    private readonly Dictionary<int, PairGroups> _byPair = [];
    private int _work;

    /// <summary>Whether the request stopped expanding at the work bound.</summary>
    public bool Truncated { get; private set; }

    /// <summary>
    /// Solves <c>concept relation ?</c>. A reasoner serves one request on one thread, and every
    /// query it answers draws on the same work bound: relate asks one per relation, and a fresh
    /// bound for each made its work grow with the number of relations times the bound.
    /// </summary>
    public Dictionary<int, Derivation> Related(int concept, int relation, int maxDepth)
    {
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
        RelationRecord r = relations[relation];
        (int, int, bool) node = Canonical(concept, r, forward);
        Spend(1);
        // Past the work bound nothing more is expanded: every open sub-query returns what it has.
        if (Truncated || !_onChain.Add(node))
        {
            return results;
        }

        try
        {
            AddStored(results, concept, r, forward);
            if (Truncated)
            {
                return results;
            }

            string? symmetricOf = SymmetricName(r);
            if (symmetricOf is null && LearnedOfPair(r, PropertyKind.Symmetric) is { } symmetric)
            {
                AddStoredOtherWay(results, concept, r, forward, symmetric);
            }

            AddLearnedInverses(results, concept, r, forward, budget);
            if (budget <= 0)
            {
                return results;
            }

            var subQueries = new SubQueries(this, budget - 1);

            foreach (bool direction in symmetricOf is not null ? [forward, !forward] : new[] { forward })
            {
                string? symmetricName = direction != forward ? symmetricOf : null;
                ApplyCompositions(results, subQueries, node, concept, r.Id, direction, budget, viaInverse: null, symmetricName);
                if (r.InverseId >= 0 && r.InverseId != r.Id)
                {
                    ApplyCompositions(results, subQueries, node, concept, r.InverseId, !direction, budget, viaInverse: r, symmetricName);
                }
            }

            bool transitive = r.Transitive || (r.InverseId >= 0 && relations[r.InverseId].Transitive);
            if (transitive)
            {
                ApplyTransitivity(results, subQueries, relation, forward, $"transitive({r.Name})", learned: null);
            }
            else if (LearnedOfPair(r, PropertyKind.Transitive) is { } learnedTransitive)
            {
                ApplyTransitivity(results, subQueries, relation, forward, $"transitive({learnedTransitive.Holder.Name}) [learned {learnedTransitive.Rule.Confidence:0.###}]", learnedTransitive.Rule);
            }

            return results;
        }
        finally
        {
            _onChain.Remove(node);
        }
    }

    private void AddStored(Dictionary<int, Derivation> results, int concept, RelationRecord r, bool forward)
    {
        int inverse = r.InverseId;
        // The inverse of a symmetric relation is symmetric too (it holds the same pairs), so either
        // declaration lets both relations' edges be read the other way.
        string? symmetric = SymmetricName(r);
        foreach (int edge in EdgesOf(concept, r.Id))
        {
            int edgeRelation = edges.Relation(edge);
            int head = edges.Head(edge), tail = edges.Tail(edge);
            if (edgeRelation == r.Id)
            {
                if (forward ? head == concept : tail == concept)
                {
                    Offer(results, forward ? tail : head, Derivation.Stored(edge));
                }

                if (symmetric is not null && (forward ? tail == concept : head == concept))
                {
                    Derivation reversed = Derivation.Rule($"symmetric({symmetric})", Derivation.Stored(edge));
                    Offer(results, forward ? head : tail, r.Symmetric ? reversed : Derivation.Rule(InverseRule(r), reversed));
                }
            }

            if (inverse >= 0 && inverse != r.Id && edgeRelation == inverse)
            {
                string rule = InverseRule(r);
                if (forward ? tail == concept : head == concept)
                {
                    Offer(results, forward ? head : tail, Derivation.Rule(rule, Derivation.Stored(edge)));
                }

                if (symmetric is not null && (forward ? head == concept : tail == concept))
                {
                    Offer(results, forward ? tail : head, Derivation.Rule(rule, Derivation.Rule($"symmetric({symmetric})", Derivation.Stored(edge))));
                }
            }
        }
    }

    /// <summary>
    /// A property learned for r, or for its declared inverse, with the relation that holds it: the
    /// inverse holds r's pairs reversed, so it is symmetric, or transitive, exactly when r is. Null
    /// when neither has one, or learned properties are not asked for.
    /// </summary>
    private (RelationRecord Holder, LearnedRule Rule)? LearnedOfPair(RelationRecord r, PropertyKind kind)
    {
        if (!includeLearned)
        {
            return null;
        }

        RelationRecord[] pair = r.InverseId >= 0 && r.InverseId != r.Id ? [r, relations[r.InverseId]] : [r];
        foreach (RelationRecord holder in pair)
        {
            if (holder.Learned?.FirstOrDefault(rule => rule.Kind == kind) is { } rule)
            {
                return (holder, rule);
            }
        }

        return null;
    }

    /// <summary>A learned symmetry (of r or of its declared inverse): the stored edges of r and of
    /// its inverse read the other way, with the proofs a declared symmetry gives, the rule learned.</summary>
    private void AddStoredOtherWay(Dictionary<int, Derivation> results, int concept, RelationRecord r, bool forward, (RelationRecord Holder, LearnedRule Rule) symmetric)
    {
        string rule = $"symmetric({symmetric.Holder.Name}) [learned {symmetric.Rule.Confidence:0.###}]";
        int inverse = r.InverseId;
        foreach (int edge in EdgesOf(concept, r.Id))
        {
            int edgeRelation = edges.Relation(edge);
            int head = edges.Head(edge), tail = edges.Tail(edge);
            if (edgeRelation == r.Id && (forward ? tail == concept : head == concept))
            {
                Derivation reversed = Derivation.Learned(rule, symmetric.Rule.Confidence, Derivation.Stored(edge));
                Offer(results, forward ? head : tail, symmetric.Holder == r ? reversed : Derivation.Rule(InverseRule(r), reversed));
            }

            if (inverse >= 0 && inverse != r.Id && edgeRelation == inverse && (forward ? head == concept : tail == concept))
            {
                Offer(results, forward ? tail : head, Derivation.Rule(InverseRule(r), Derivation.Learned(rule, symmetric.Rule.Confidence, Derivation.Stored(edge))));
            }
        }
    }

    /// <summary>
    /// Learned inverses of r other than its declared one: <c>c r x</c> from <c>x s c</c>. Like a
    /// declared inverse, reading one costs no depth (at max depth 0 it reads s's stored edges, and
    /// the inverse and symmetric readings of them, as a declared one does); a pair of relations
    /// learned as each other's inverse ends at the cycle check.
    /// </summary>
    private void AddLearnedInverses(Dictionary<int, Derivation> results, int concept, RelationRecord r, bool forward, int budget)
    {
        if (!includeLearned || r.Learned is not { } learned)
        {
            return;
        }

        SubQueries? sameDepth = null;
        foreach (LearnedRule rule in learned.Where(rule => rule.Kind == PropertyKind.Inverse && rule.Other != r.InverseId && rule.Other != r.Id))
        {
            sameDepth ??= new SubQueries(this, budget);
            string text = $"{r.Name} = inverse({relations[rule.Other].Name}) [learned {rule.Confidence:0.###}]";
            foreach ((int answer, Derivation premise) in sameDepth.Solve(concept, rule.Other, !forward))
            {
                Spend(1);
                Offer(results, answer, Derivation.Learned(text, rule.Confidence, premise));
            }
        }
    }

    /// <summary>
    /// The edges at <paramref name="concept"/> that may be of <paramref name="relation"/> or its
    /// inverse, for the caller to filter: all of them, or, at a concept with many edges read again
    /// in this request, only those of the pair, in adjacency order (so proofs that tie are found in
    /// the order a scan finds them). Each edge returned costs one unit of work, and grouping one
    /// per edge, once per request.
    /// </summary>
    private ReadOnlySpan<int> EdgesOf(int concept, int relation)
    {
        ReadOnlySpan<int> incident = edges.EdgesOf(concept);
        PairGroups? groups = null;
        if (incident.Length >= GroupedDegree && !_byPair.TryGetValue(concept, out groups) && !_readOnce.Add(concept))
        {
            // Read before in this request: grouped now, later reads take only their pair's edges.
            groups = Group(incident);
            _byPair[concept] = groups;
        }

        if (groups is null)
        {
            Spend(incident.Length);
            return incident;
        }

        ReadOnlySpan<int> ofPair = groups.Of(PairKey(relation));
        Spend(ofPair.Length);
        return ofPair;
    }

    /// <summary>Groups a concept's edges by relation pair (a relation and its inverse share one key)
    /// into one array by a counting sort, so each group keeps adjacency order.</summary>
    private PairGroups Group(ReadOnlySpan<int> incident)
    {
        Spend(incident.Length);
        var runs = new Dictionary<int, (int Start, int Count)>();
        foreach (int edge in incident)
        {
            int key = PairKey(edges.Relation(edge));
            runs[key] = (0, runs.GetValueOrDefault(key).Count + 1);
        }

        int start = 0;
        foreach (int key in runs.Keys.ToArray())
        {
            int count = runs[key].Count;
            runs[key] = (start, 0);
            start += count;
        }

        int[] grouped = new int[incident.Length];
        foreach (int edge in incident)
        {
            int key = PairKey(edges.Relation(edge));
            (int runStart, int filled) = runs[key];
            grouped[runStart + filled] = edge;
            runs[key] = (runStart, filled + 1);
        }

        return new PairGroups(grouped, runs);
    }

    /// <summary>The key a relation shares with its inverse: the smaller id of the two.</summary>
    private int PairKey(int relation)
    {
        int inverse = relations[relation].InverseId;
        return inverse >= 0 && inverse < relation ? inverse : relation;
    }

    private void Spend(int units)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _work += units;
        if (_work > MaxWork)
        {
            Truncated = true;
        }
    }

    /// <summary>
    /// Applies the rules <c>r1 ∘ r2 ⇒ target</c>, declared and (when asked) learned. Forward:
    /// <c>c r1 y, y r2 x</c>; backward: <c>x r1 y, y r2 c</c>. When <paramref name="viaInverse"/> is
    /// set, target is the inverse of the asked relation and each answer is read back through it.
    /// </summary>
    private void ApplyCompositions(
        Dictionary<int, Derivation> results, SubQueries subQueries, (int, int, bool) asked, int concept, int target, bool forward, int budget, RelationRecord? viaInverse, string? symmetric)
    {
        RelationRecord targetRecord = relations[target];
        IEnumerable<(int First, int Second, double Confidence, bool Learned)> rules = targetRecord.Compositions.Select(rule => (rule.First, rule.Second, 1.0, false));
        if (includeLearned && targetRecord.Learned is { } learned)
        {
            rules = rules.Concat(learned
                .Where(rule => rule.Kind == PropertyKind.Composition && !targetRecord.Compositions.Contains((rule.First, rule.Second)))
                .Select(rule => (rule.First, rule.Second, rule.Confidence, true)));
        }

        foreach ((int first, int second, double confidence, bool isLearned) in rules)
        {
            // A rule costs work even when nothing joins: a relation may carry many. Its text is
            // written only once it proves something, since most rules tried join nothing.
            Spend(1);
            string? rule = null;
            (int near, int far) = forward ? (first, second) : (second, first);
            void Join(int middle, Derivation toMiddle)
            {
                foreach ((int answer, Derivation toAnswer) in subQueries.Solve(middle, far, forward))
                {
                    Spend(1);
                    rule ??= $"{relations[first].Name} ∘ {relations[second].Name} ⇒ {targetRecord.Name}" + (isLearned ? $" [learned {confidence:0.###}]" : "");
                    Derivation[] premises = forward ? [toMiddle, toAnswer] : [toAnswer, toMiddle];
                    Derivation derivation = isLearned ? Derivation.Learned(rule, confidence, premises) : Derivation.Rule(rule, premises);
                    if (viaInverse is { } inverseOf)
                    {
                        derivation = Derivation.Rule(InverseRule(inverseOf), derivation);
                    }

                    if (symmetric is not null)
                    {
                        derivation = Derivation.Rule($"symmetric({symmetric})", derivation);
                    }

                    Offer(results, answer, derivation);
                }
            }

            if (Canonical(concept, relations[near], forward) != asked)
            {
                foreach ((int middle, Derivation toMiddle) in subQueries.Solve(concept, near, forward))
                {
                    Join(middle, toMiddle);
                }

                continue;
            }

            // A recursive rule (ancestor ∘ ancestor ⇒ ancestor, r ∘ q ⇒ r): its near premise is the
            // question being answered, which as a sub-query would answer nothing (it is on the
            // chain). Its answers so far are the middles instead, and each round joins the ones
            // found by the round before, until none is new or the rule budget is spent. A middle
            // stands for a premise solved with budget − 1, so only proofs of fewer than budget
            // rules qualify (a proof's depth is at most its rule count): the joined proof stays
            // within max_depth.
            var joined = new HashSet<int>();
            for (int round = 0; round < budget; round++)
            {
                (int Middle, Derivation ToMiddle)[] fresh = [.. results
                    .Where(pair => pair.Value.Steps < budget && !joined.Contains(pair.Key))
                    .Select(pair => (pair.Key, pair.Value))];
                if (fresh.Length == 0)
                {
                    break;
                }

                foreach ((int middle, Derivation toMiddle) in fresh)
                {
                    joined.Add(middle);
                    Join(middle, toMiddle);
                }
            }
        }
    }

    private void ApplyTransitivity(Dictionary<int, Derivation> results, SubQueries subQueries, int relation, bool forward, string rule, LearnedRule? learned)
    {
        foreach ((int middle, Derivation toMiddle) in results.ToArray())
        {
            foreach ((int answer, Derivation onward) in subQueries.Solve(middle, relation, forward))
            {
                Spend(1);
                Derivation[] premises = forward ? [toMiddle, onward] : [onward, toMiddle];
                Offer(results, answer, learned is null ? Derivation.Rule(rule, premises) : Derivation.Learned(rule, learned.Confidence, premises));
            }
        }
    }

    /// <summary>
    /// The sub-queries of one node's expansion, each solved once. They all run with the same chain
    /// above them and the same depth budget, so asking one again (the near premise shared by several
    /// rules, the same middle joined by several) would recompute the same answers and proofs; the
    /// repeat still costs a unit of work. Only within one node: elsewhere the chain differs, and
    /// with it what the cycle check cuts.
    /// </summary>
    private sealed class SubQueries(Reasoner reasoner, int budget)
    {
        private readonly Dictionary<(int Concept, int Relation, bool Forward), Dictionary<int, Derivation>> _solved = [];

        public Dictionary<int, Derivation> Solve(int concept, int relation, bool forward)
        {
            if (_solved.TryGetValue((concept, relation, forward), out Dictionary<int, Derivation>? answers))
            {
                reasoner.Spend(1);
                return answers;
            }

            answers = reasoner.Solve(concept, relation, forward, budget);
            _solved[(concept, relation, forward)] = answers;
            return answers;
        }
    }

    private static void Offer(Dictionary<int, Derivation> results, int concept, Derivation candidate)
    {
        if (!results.TryGetValue(concept, out Derivation? current) || candidate.IsBetterThan(current))
        {
            results[concept] = candidate;
        }
    }

    private string InverseRule(RelationRecord asked) => $"{asked.Name} = inverse({relations[asked.InverseId].Name})";

    /// <summary>(c, r, forward) and (c, inverse(r), backward) ask the same thing; a symmetric relation
    /// (or one whose inverse is symmetric) has no direction.</summary>
    private (int, int, bool) Canonical(int concept, RelationRecord r, bool forward)
    {
        int id = r.InverseId >= 0 && r.InverseId < r.Id ? r.InverseId : r.Id;
        return (concept, id, SymmetricName(r) is not null || (id == r.Id ? forward : !forward));
    }

    /// <summary>The declared symmetric relation that makes r symmetric (r itself, or its inverse,
    /// which then holds the same pairs); null when neither is declared symmetric.</summary>
    private string? SymmetricName(RelationRecord r) =>
        r.Symmetric ? r.Name
        : r.InverseId >= 0 && relations[r.InverseId].Symmetric ? relations[r.InverseId].Name
        : null;

    /// <summary>A concept's edges grouped by relation pair: one array, and each pair's run in it.</summary>
    private sealed class PairGroups(int[] grouped, Dictionary<int, (int Start, int Count)> runs)
    {
        /// <summary>The edges of the pair keyed <paramref name="key"/>, in adjacency order.</summary>
        public ReadOnlySpan<int> Of(int key) =>
            runs.TryGetValue(key, out (int Start, int Count) run) ? grouped.AsSpan(run.Start, run.Count) : [];
    }
}

/// <summary>
/// A proof tree: a stored edge, or a rule applied to premises. Proofs are compared by kind (stored,
/// then derived, then learned), then by the number of rules applied, then by confidence, so every
/// answer carries its best proof found.
/// </summary>
internal sealed class Derivation
{
    private int[]? _storedEdges;

    private Derivation(int edge, string? rule, Derivation[] premises, int steps, double confidence, bool learned)
    {
        Edge = edge;
        RuleText = rule;
        Premises = premises;
        Steps = steps;
        Confidence = confidence;
        UsesLearnedRule = learned;
    }

    /// <summary>The stored edge, or −1 for a rule application.</summary>
    public int Edge { get; }

    public string? RuleText { get; }

    public Derivation[] Premises { get; }

    /// <summary>Rules applied in the whole tree.</summary>
    public int Steps { get; }

    /// <summary>Product of the confidences of the rules applied (1 when all are declared).</summary>
    public double Confidence { get; }

    public bool UsesLearnedRule { get; }

    public AnswerKind Kind => RuleText is null ? AnswerKind.Stored : UsesLearnedRule ? AnswerKind.Learned : AnswerKind.Derived;

    public static Derivation Stored(int edge) => new(edge, null, [], 0, 1.0, false);

    /// <summary>A declared rule applied to premises.</summary>
    public static Derivation Rule(string rule, params Derivation[] premises) => Apply(rule, 1.0, learned: false, premises);

    /// <summary>A learned rule, with its confidence, applied to premises.</summary>
    public static Derivation Learned(string rule, double confidence, params Derivation[] premises) => Apply(rule, confidence, learned: true, premises);

    private static Derivation Apply(string rule, double confidence, bool learned, Derivation[] premises) => new(
        -1,
        rule,
        premises,
        1 + premises.Sum(premise => premise.Steps),
        confidence * premises.Aggregate(1.0, (product, premise) => product * premise.Confidence),
        learned || premises.Any(premise => premise.UsesLearnedRule));

    public bool IsBetterThan(Derivation other) =>
        Kind != other.Kind ? Kind < other.Kind
        : Steps != other.Steps ? Steps < other.Steps
        : Confidence != other.Confidence ? Confidence > other.Confidence
        // Otherwise the proof over the earliest stored facts: which is found first depends on the
        // order of the adjacency lists, which deletes and reopens change.
        : StoredEdges.AsSpan().SequenceCompareTo(other.StoredEdges) < 0;

    /// <summary>The stored edges used, left to right, each once. Kept once computed (a derivation
    /// never changes): tied derivations compare them at every offer.</summary>
    public int[] StoredEdges => _storedEdges ??= CollectStoredEdges();

    /// <summary>The stored edges used (see <see cref="StoredEdges"/>) and the rules applied
    /// (innermost first, each once).</summary>
    public (IReadOnlyList<int> Edges, List<string> Rules) Flatten()
    {
        var rules = new List<string>();
        Walk(this, rules);
        return (StoredEdges, rules);

        static void Walk(Derivation node, List<string> rules)
        {
            if (node.RuleText is null)
            {
                return;
            }

            foreach (Derivation premise in node.Premises)
            {
                Walk(premise, rules);
            }

            if (!rules.Contains(node.RuleText))
            {
                rules.Add(node.RuleText);
            }
        }
    }

    private int[] CollectStoredEdges()
    {
        var edges = new List<int>();
        Walk(this, edges);
        return [.. edges];

        static void Walk(Derivation node, List<int> edges)
        {
            if (node.RuleText is null)
            {
                if (!edges.Contains(node.Edge))
                {
                    edges.Add(node.Edge);
                }

                return;
            }

            foreach (Derivation premise in node.Premises)
            {
                Walk(premise, edges);
            }
        }
    }
}
