using System.Diagnostics.CodeAnalysis;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Answers "which x satisfy c r x?" from stored edges and relation properties, by bounded backward
/// chaining. A question is (concept, relation, direction, depth): forward asks for x with
/// <c>c r x</c>, backward for x with <c>x r c</c>, by proofs at most depth rules deep. It is answered by
/// <list type="bullet">
/// <item>stored edges of r in the asked direction (kind stored), and in the other direction when r
/// is symmetric;</item>
/// <item>stored edges of r's inverse r′ read the other way (<c>x r′ c ⇒ c r x</c>);</item>
/// <item>composition rules <c>r1 ∘ r2 ⇒ r</c> (and those of r′, read through the inverse), each
/// premise asked at one depth less (a recursive rule's near premise is the question itself, one
/// depth less);</item>
/// <item>symmetry of r, or of r′ (the inverse of a symmetric relation holds the same pairs);</item>
/// <item>transitivity, as the composition of r with itself;</item>
/// <item>when asked to, the same properties learned from data, each with its confidence; answers
/// that need one are of kind learned, scored by the product of the confidences used. A learned
/// symmetry reads stored facts the other way, not derived ones (which the tests' exhaustive
/// reference, LearnedRuleClosure, and its proof check hold it to).</item>
/// </list>
/// The depth bounds how deeply rules nest in a proof; reading through an inverse or a symmetry costs
/// none. Each question is solved once per request and its answers reused wherever it is asked
/// again: a dense rule set asks the same questions from many places (Kinship with its mined rules,
/// searched to depth 2, asked each about 3,000 times). Every
/// premise is asked at a smaller depth except a learned inverse's, so only learned inverses can lead
/// back to a question being solved; it answers nothing there (so cycles terminate), and what was
/// solved under such a cut is not reused elsewhere, where it would lack the cut question's answers.
/// A work bound caps what one request may do (edges visited, questions asked, rules applied), and
/// the caller's cancellation is checked at every unit of it. Declared properties win: a learned rule
/// the declarations already imply is not applied.
/// </summary>
internal sealed class Reasoner(RelationTable relations, EdgeIndex edges, bool includeLearned = true, CancellationToken cancellationToken = default)
{
    /// <summary>
    /// Units of work per request before it stops expanding: each edge visited, each question asked
    /// and each rule applied costs one. Counting edges alone let sub-queries on concepts without
    /// edges multiply for free, so one request could hold the collection's read lock for minutes.
    /// </summary>
    public const int MaxWork = 2_000_000;

    /// <summary>
    /// How many learned inverses one chain of reasoning follows in a row (r = inverse(s),
    /// s = inverse(t), …). Reading one costs no depth, so nothing else bounded a chain of them: each
    /// hop nests a question, and a chain of tens of thousands of learned inverses overflowed the
    /// stack, which ends the process. Its confidence is the product of the hops' (0.9¹⁶ ≈ 0.19).
    /// </summary>
    public const int MaxLearnedInverseHops = 16;

    /// <summary>
    /// Concepts with at least this many edges have them grouped by relation pair when a request
    /// reads them a second time. Relate asks about every relation at a, and proofs ask about many
    /// at a hub: each read all of its edges again (7,614 at FB15k-237's most connected entity,
    /// times its 237 relations, spent most of the work bound before any rule was tried). Below it a
    /// scan costs less than grouping; and a hub read once is only scanned (grouping every hub met
    /// cost hundreds of megabytes in a request that reads 900 of them once).
    /// </summary>
    private const int GroupedDegree = 64;

    /// <summary>The questions being solved, by canonical node and depth, with their place on the chain.</summary>
    private readonly Dictionary<((int Concept, int Relation, bool Forward) Node, int Depth), int> _onChain = [];

    /// <summary>Answers with every property applied, kept when no cut above the question shaped them.</summary>
    private readonly SolvedQuestions _solved = new();

    /// <summary>Answers from all but learned inverses, kept for a question whose answers a cut above
    /// shaped: their premises are all asked at a smaller depth, so no cut above shapes them, and the
    /// question solved again under another chain reuses them.</summary>
    private readonly SolvedQuestions _expanded = new();

    private readonly HashSet<int> _readOnce = [];
    private readonly Dictionary<int, PairGroups> _byPair = [];
    private int _work;

    /// <summary>Questions asked so far, to tell a question that asked none.</summary>
    private int _asked;

    /// <summary>The lowest place on the chain that a question solved in the current one's subtree was cut at.</summary>
    private int _lowestCut = int.MaxValue;

    /// <summary>Whether a question in the current subtree had rules left that its depth did not allow.</summary>
    private bool _depthLimited;

    /// <summary>Learned inverses followed on the current chain.</summary>
    private int _learnedInverseHops;

    /// <summary>The place on the chain where the current chain of learned inverses began: a
    /// question there was asked with none followed, so a hop limit reached below it cuts the same
    /// wherever it is asked, and only the questions after it are shaped by the cut.</summary>
    private int _hopChainStart;

    /// <summary>Each relation's learned rules as this request reads them, sorted out once: a relation
    /// may carry thousands, and finding its symmetry, transitivity, inverses and compositions among
    /// them at every question (a composition also checked against up to a thousand declared ones)
    /// cost far more than the one unit a question is charged.</summary>
    private readonly Dictionary<int, LearnedRules> _learnedRules = [];

    /// <summary>Whether the request stopped expanding at the work bound.</summary>
    public bool Truncated { get; private set; }

    /// <summary>The units of work the request has spent: past <see cref="MaxWork"/> by at most the
    /// charge that reached it.</summary>
    public int WorkSpent => _work;

    /// <summary>
    /// Solves <c>concept relation ?</c> at depth 0, 1, … up to <paramref name="maxDepth"/>, keeping
    /// every answer found (the best proof of each). A search deeper than the last one cannot answer
    /// less: when the work bound stops it, the answers of the depths completed are kept, where
    /// searching the whole depth first spent the bound under the first rules tried (on Kinship with
    /// its mined rules, depth 4 answered none to 21 of the hundred or so concepts depth 1 answers,
    /// and depth 2 alone needs some 66 M units). The searches stop at the
    /// depth where no rule was left unapplied, which a deeper one would answer the same. A reasoner
    /// serves one request on one thread, and every query it answers draws on the same work bound.
    /// </summary>
    public Dictionary<int, Derivation> Related(int concept, int relation, int maxDepth) =>
        Related(concept, [relation], maxDepth)[0];

    /// <summary>
    /// <see cref="Related(int, int, int)"/> for several relations at once, depth by depth across
    /// them: every relation is searched at depth d before any at depth d + 1. Relate asks about every
    /// relation, and searching each to the full depth in turn let the first relations with dense
    /// rules spend the shared work bound, leaving the others' shallow answers unfound (on Kinship
    /// with its mined rules, relate listed one of the many relations that hold between two people
    /// by depth 1). The
    /// answers are in the order of <paramref name="relationIds"/>.
    /// </summary>
    public Dictionary<int, Derivation>[] Related(int concept, IReadOnlyList<int> relationIds, int maxDepth)
    {
        Dictionary<int, Derivation>[] answers = [.. relationIds.Select(_ => new Dictionary<int, Derivation>())];
        // The relations whose last search left a rule unapplied for want of depth.
        List<int> open = [.. Enumerable.Range(0, relationIds.Count)];
        for (int depth = 0; depth <= maxDepth && open.Count > 0 && !Truncated; depth++)
        {
            var stillOpen = new List<int>(open.Count);
            foreach (int i in open)
            {
                _depthLimited = false;
                foreach ((int answer, Derivation derivation) in Solve(concept, relationIds[i], forward: true, depth))
                {
                    Offer(answers[i], answer, derivation);
                }

                if (_depthLimited)
                {
                    stillOpen.Add(i);
                }
            }

            open = stillOpen;
        }

        foreach (Dictionary<int, Derivation> found in answers)
        {
            if (found.TryGetValue(concept, out Derivation? self) && self.Kind != AnswerKind.Stored && !OnlySelfLoops(self, concept))
            {
                // A derived self-answer through other concepts is an artifact of a cycle (a r b, b r a
                // under transitivity), not news; one read from the concept's own loops (a likes a,
                // asked as liked_by) is a consequence like any other.
                found.Remove(concept);
            }
        }

        return answers;
    }

    private bool OnlySelfLoops(Derivation derivation, int concept)
    {
        foreach (int edge in derivation.StoredEdges)
        {
            if (edges.Head(edge) != concept || edges.Tail(edge) != concept)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The answers to a question, which the caller must not change (they may be reused).</summary>
    private Dictionary<int, Derivation> Solve(int concept, int relation, bool forward, int depth)
    {
        Spend(1);
        _asked++;
        var question = (concept, relation, forward, depth);
        if (_solved.TryGet(question, out Dictionary<int, Derivation>? known, out bool knownLimited))
        {
            _depthLimited |= knownLimited;
            return known;
        }

        RelationRecord r = relations[relation];
        var node = (Canonical(concept, r, forward), depth);
        // Past the work bound nothing more is expanded: every open question returns what it has.
        if (Truncated)
        {
            return SolvedQuestions.NoAnswers;
        }

        if (_onChain.TryGetValue(node, out int cutAt))
        {
            _lowestCut = Math.Min(_lowestCut, cutAt);
            return SolvedQuestions.NoAnswers;
        }

        int place = _onChain.Count;
        _onChain.Add(node, place);
        (int outerCut, bool outerLimited, int askedBefore) = (_lowestCut, _depthLimited, _asked);
        (_lowestCut, _depthLimited) = (int.MaxValue, false);
        try
        {
            Dictionary<int, Derivation> own = Expand(question, r);
            Dictionary<int, Derivation> answers = WithLearnedInverses(own, concept, r, forward, depth);
            if (Truncated || (answers.Count == 0 && _asked == askedBefore))
            {
                // A question that asked none and found nothing is read again, not kept: reading its
                // stored edges again costs what keeping it saves, and a search may ask millions once.
                return answers;
            }

            // Cuts at this question or below it happen wherever it is solved; one above it would not.
            if (_lowestCut >= place)
            {
                _solved.Add(question, answers, _depthLimited);
            }
            else
            {
                _expanded.Add(question, own, _depthLimited);
            }

            return answers;
        }
        finally
        {
            _onChain.Remove(node);
            (_lowestCut, _depthLimited) = (Math.Min(outerCut, _lowestCut), outerLimited || _depthLimited);
        }
    }

    /// <summary>The answers from every property but learned inverses.</summary>
    private Dictionary<int, Derivation> Expand((int Concept, int Relation, bool Forward, int Depth) question, RelationRecord r)
    {
        if (_expanded.TryGet(question, out Dictionary<int, Derivation>? known, out bool knownLimited))
        {
            _depthLimited |= knownLimited;
            return known;
        }

        (int concept, _, bool forward, int depth) = question;
        var results = new Dictionary<int, Derivation>();
        AddStored(results, concept, r, forward);
        string? symmetricOf = SymmetricName(r);
        if (!Truncated && symmetricOf is null && LearnedOfPair(r, PropertyKind.Symmetric) is { } symmetric)
        {
            AddStoredOtherWay(results, concept, r, forward, symmetric);
        }

        if (depth <= 0)
        {
            _depthLimited |= HasDepthRules(r);
        }
        else if (!Truncated)
        {
            // The premises, a depth less, start chains of learned inverses of their own: what is
            // found here (kept in _expanded) is then the same under any chain above, where a chain
            // carried on had its hop limit cut premises short under a long one and kept what they
            // lacked for the question asked again from a short one. Depth bounds how many chains
            // nest, so the stack stays bounded.
            (int hops, int chainStart) = (_learnedInverseHops, _hopChainStart);
            (_learnedInverseHops, _hopChainStart) = (0, _onChain.Count);
            try
            {
                foreach (bool direction in symmetricOf is not null ? [forward, !forward] : new[] { forward })
                {
                    ApplyCompositions(results, concept, r, r.Id, direction, depth, otherWay: direction != forward);
                    if (r.InverseId >= 0 && r.InverseId != r.Id)
                    {
                        ApplyCompositions(results, concept, r, r.InverseId, !direction, depth, otherWay: direction != forward);
                    }
                }

                if (r.Transitive || (r.InverseId >= 0 && relations[r.InverseId].Transitive))
                {
                    // Named for the relation declared transitive: an inverse's reverse pairs chain as its own do.
                    string holder = r.Transitive ? r.Name : relations[r.InverseId].Name;
                    ApplyTransitivity(results, concept, r.Id, forward, depth, $"transitive({holder})", learned: null);
                }
                else if (LearnedOfPair(r, PropertyKind.Transitive) is { } learnedTransitive)
                {
                    ApplyTransitivity(results, concept, r.Id, forward, depth, $"transitive({learnedTransitive.Holder.Name}) [learned {learnedTransitive.Rule.Confidence:0.###}]", learnedTransitive.Rule);
                }
            }
            finally
            {
                (_learnedInverseHops, _hopChainStart) = (hops, chainStart);
            }
        }

        return results;
    }

    /// <summary>Whether a question about r has rules that need depth: compositions concluding r or
    /// its inverse, or transitivity; at depth 0 they are left unapplied.</summary>
    private bool HasDepthRules(RelationRecord r)
    {
        bool Composed(RelationRecord target) => target.Compositions.Count > 0 || LearnedRulesOf(target).Compositions.Length > 0;

        RelationRecord? inverse = r.InverseId >= 0 && r.InverseId != r.Id ? relations[r.InverseId] : null;
        return Composed(r) || (inverse is not null && Composed(inverse))
            || r.Transitive || inverse?.Transitive == true || LearnedOfPair(r, PropertyKind.Transitive) is not null;
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
                    Offer(results, forward ? head : tail, ReadOtherWay(r, Derivation.Stored(edge)));
                }
            }

            if (inverse >= 0 && inverse != r.Id && edgeRelation == inverse)
            {
                if (forward ? tail == concept : head == concept)
                {
                    Offer(results, forward ? head : tail, ReadAs(r, Derivation.Stored(edge), ofInverse: true, otherWay: false));
                }

                if (symmetric is not null && (forward ? head == concept : tail == concept))
                {
                    Offer(results, forward ? tail : head, ReadAs(r, Derivation.Stored(edge), ofInverse: true, otherWay: true));
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
            LearnedRules rules = LearnedRulesOf(holder);
            if ((kind == PropertyKind.Symmetric ? rules.Symmetric : rules.Transitive) is { } rule)
            {
                return (holder, rule);
            }
        }

        return null;
    }

    private LearnedRules LearnedRulesOf(RelationRecord r)
    {
        if (!includeLearned || r.Learned is not { Count: > 0 } learned)
        {
            return LearnedRules.None;
        }

        if (_learnedRules.TryGetValue(r.Id, out LearnedRules? known))
        {
            return known;
        }

        var declared = new HashSet<(int, int)>(r.Compositions);
        var rules = new LearnedRules(
            learned.FirstOrDefault(rule => rule.Kind == PropertyKind.Symmetric),
            learned.FirstOrDefault(rule => rule.Kind == PropertyKind.Transitive),
            [.. learned.Where(rule => rule.Kind == PropertyKind.Inverse && rule.Other != r.InverseId && rule.Other != r.Id)],
            [.. learned
                .Where(rule => rule.Kind == PropertyKind.Composition && !declared.Contains((rule.First, rule.Second)))
                .Select(rule => (rule.First, rule.Second, rule.Confidence, true))]);
        _learnedRules.Add(r.Id, rules);
        return rules;
    }

    /// <summary>A relation's learned rules: its symmetry and transitivity (null when none), its
    /// inverses other than its declared one, and the compositions concluding it that are not
    /// declared too (those are read from the relation, each charged as it is tried).</summary>
    private sealed record LearnedRules(
        LearnedRule? Symmetric,
        LearnedRule? Transitive,
        LearnedRule[] Inverses,
        (int First, int Second, double Confidence, bool Learned)[] Compositions)
    {
        /// <summary>The rules of a relation without learned ones (most), or of any when they are not asked for.</summary>
        public static LearnedRules None { get; } = new(null, null, [], []);
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
    /// Adds to <paramref name="own"/> what learned inverses answer, read as declared properties are:
    /// r's own other than its declared one (<c>c r x</c> from <c>x s c</c>), those of r's declared
    /// inverse r′ (<c>c r x ⇔ x r′ c</c>, from <c>c s′ x</c>), and, when r is symmetric, both from
    /// the other end. Like a declared inverse, reading one costs no depth (at max depth 0 it reads
    /// s's stored edges, and the inverse and symmetric readings of them, as a declared one does); a
    /// pair of relations learned as each other's inverse ends at the cycle check. Returns
    /// <paramref name="own"/> itself when nothing is added, since it may be reused.
    /// </summary>
    private Dictionary<int, Derivation> WithLearnedInverses(Dictionary<int, Derivation> own, int concept, RelationRecord r, bool forward, int depth)
    {
        RelationRecord? declaredInverse = r.InverseId >= 0 && r.InverseId != r.Id ? relations[r.InverseId] : null;
        if (LearnedRulesOf(r).Inverses.Length == 0 && (declaredInverse is null || LearnedRulesOf(declaredInverse).Inverses.Length == 0))
        {
            // Most relations: asked at every question, so nothing is allocated for them.
            return own;
        }

        Dictionary<int, Derivation>? results = null;
        foreach (bool direction in SymmetricName(r) is not null ? [forward, !forward] : new[] { forward })
        {
            foreach (RelationRecord holder in declaredInverse is null ? [r] : new[] { r, declaredInverse })
            {
                foreach (LearnedRule rule in LearnedRulesOf(holder).Inverses)
                {
                    if (Truncated)
                    {
                        return results ?? own;
                    }

                    if (_learnedInverseHops == MaxLearnedInverseHops)
                    {
                        // Answered without this hop, a question on the chain of learned inverses is no
                        // answer to ask again from a shorter one, so none after its start is kept: as
                        // at a cycle cut there.
                        _lowestCut = Math.Min(_lowestCut, _hopChainStart);
                        return results ?? own;
                    }

                    string text = $"{holder.Name} = inverse({relations[rule.Other].Name}) [learned {rule.Confidence:0.###}]";
                    _learnedInverseHops++;
                    // x s c answers c r x, and c s′ x answers x r′ c, which is c r x.
                    Dictionary<int, Derivation> premises = Solve(concept, rule.Other, holder == r ? !direction : direction, depth);
                    _learnedInverseHops--;

                    foreach ((int answer, Derivation premise) in premises)
                    {
                        if (Truncated)
                        {
                            return results ?? own;
                        }

                        Spend(1);
                        if (results is null)
                        {
                            // The copy is work too: a question cut by a chain above is solved again under
                            // each new chain, and a hub's answers were copied each time for one unit.
                            Spend(own.Count);
                            results = new Dictionary<int, Derivation>(own);
                        }

                        Offer(results, answer, ReadAs(r, Derivation.Learned(text, rule.Confidence, premise), ofInverse: holder != r, otherWay: direction != forward));
                    }
                }
            }
        }

        return results ?? own;
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
    /// Applies the rules <c>r1 ∘ r2 ⇒ target</c>, declared and (when asked) learned, each premise
    /// asked at one depth less. Forward: <c>c r1 y, y r2 x</c>; backward: <c>x r1 y, y r2 c</c>. When
    /// target is the inverse of the <paramref name="asked"/> relation each answer is read back
    /// through it, and <paramref name="otherWay"/> reads it through the asked relation's symmetry.
    /// Nothing more is joined once the work bound is reached: the premises asked again are answered
    /// from what the request solved, and joining those went on for every rule left.
    /// </summary>
    private void ApplyCompositions(
        Dictionary<int, Derivation> results, int concept, RelationRecord asked, int target, bool forward, int depth, bool otherWay)
    {
        RelationRecord targetRecord = relations[target];
        foreach ((int first, int second, double confidence, bool isLearned) in targetRecord.Compositions
            .Select(rule => (rule.First, rule.Second, 1.0, false)).Concat(LearnedRulesOf(targetRecord).Compositions))
        {
            // A rule costs work even when nothing joins: a relation may carry many. Its text is
            // written only once it proves something, since most rules tried join nothing.
            Spend(1);
            string? rule = null;
            (int near, int far) = forward ? (first, second) : (second, first);
            foreach ((int middle, Derivation toMiddle) in Solve(concept, near, forward, depth - 1))
            {
                foreach ((int answer, Derivation toAnswer) in Solve(middle, far, forward, depth - 1))
                {
                    if (Truncated)
                    {
                        return;
                    }

                    Spend(1);
                    rule ??= $"{relations[first].Name} ∘ {relations[second].Name} ⇒ {targetRecord.Name}" + (isLearned ? $" [learned {confidence:0.###}]" : "");
                    Derivation[] premises = forward ? [toMiddle, toAnswer] : [toAnswer, toMiddle];
                    Derivation derivation = isLearned ? Derivation.Learned(rule, confidence, premises) : Derivation.Rule(rule, premises);
                    Offer(results, answer, ReadAs(asked, derivation, ofInverse: target != asked.Id, otherWay));
                }
            }

            if (Truncated)
            {
                return;
            }
        }
    }

    /// <summary>Transitivity as the rule <c>r ∘ r ⇒ r</c>: both premises asked at one depth less, so
    /// a proof's depth stays within the budget (middles taken from the answers at this depth, some
    /// already a rule deep, made proofs one rule deeper than max_depth allowed).</summary>
    private void ApplyTransitivity(Dictionary<int, Derivation> results, int concept, int relation, bool forward, int depth, string rule, LearnedRule? learned)
    {
        foreach ((int middle, Derivation toMiddle) in Solve(concept, relation, forward, depth - 1))
        {
            foreach ((int answer, Derivation onward) in Solve(middle, relation, forward, depth - 1))
            {
                // Past the bound as for compositions: the premises asked again are answered from
                // what the request solved, and joining those is unbounded.
                if (Truncated)
                {
                    return;
                }

                Spend(1);
                Derivation[] premises = forward ? [toMiddle, onward] : [onward, toMiddle];
                Offer(results, answer, learned is null ? Derivation.Rule(rule, premises) : Derivation.Learned(rule, learned.Confidence, premises));
            }
        }
    }

    /// <summary>
    /// Questions solved in this request, with their answers (never changed once kept). A question
    /// whose search left no rule unapplied for lack of depth answers the same at every greater
    /// depth, so it is kept for those too (a relation without rules is read once, not once per depth).
    /// </summary>
    private sealed class SolvedQuestions
    {
        private readonly Dictionary<(int Concept, int Relation, bool Forward, int Depth), Dictionary<int, Derivation>> _atDepth = [];
        private readonly Dictionary<(int Concept, int Relation, bool Forward), (int Depth, Dictionary<int, Derivation> Answers)> _fromDepth = [];

        /// <summary>The answers of a question with none, shared: most questions asked have none.</summary>
        public static Dictionary<int, Derivation> NoAnswers { get; } = [];

        public bool TryGet((int Concept, int Relation, bool Forward, int Depth) question, [NotNullWhen(true)] out Dictionary<int, Derivation>? answers, out bool depthLimited)
        {
            depthLimited = true;
            if (_atDepth.TryGetValue(question, out answers))
            {
                return true;
            }

            depthLimited = false;
            if (_fromDepth.TryGetValue((question.Concept, question.Relation, question.Forward), out (int Depth, Dictionary<int, Derivation> Answers) kept) && kept.Depth <= question.Depth)
            {
                answers = kept.Answers;
                return true;
            }

            return false;
        }

        public void Add((int Concept, int Relation, bool Forward, int Depth) question, Dictionary<int, Derivation> answers, bool depthLimited)
        {
            answers = answers.Count == 0 ? NoAnswers : answers;
            if (depthLimited)
            {
                _atDepth[question] = answers;
            }
            else if (!_fromDepth.TryGetValue((question.Concept, question.Relation, question.Forward), out (int Depth, Dictionary<int, Derivation> Answers) kept) || question.Depth < kept.Depth)
            {
                _fromDepth[(question.Concept, question.Relation, question.Forward)] = (question.Depth, answers);
            }
        }
    }

    private void Offer(Dictionary<int, Derivation> results, int concept, Derivation candidate)
    {
        if (!results.TryGetValue(concept, out Derivation? current))
        {
            results[concept] = candidate;
            return;
        }

        if (candidate.TiesWith(current))
        {
            // Tied proofs are told apart by their facts, listed (and kept) for both: work as large as
            // the proofs, which a chain of doublings makes 2^depth facts long.
            Spend((int)Math.Min((long)candidate.Steps + current.Steps, MaxWork + 1L));
        }

        if (candidate.IsBetterThan(current))
        {
            results[concept] = candidate;
        }
    }

    private string InverseRule(RelationRecord asked) => $"{asked.Name} = inverse({relations[asked.InverseId].Name})";

    /// <summary>A proof of <c>x r c</c> read as one of <c>c r x</c> through r's symmetry: r's own, or
    /// its inverse's, which holds r's pairs reversed (r′ symmetric, r = inverse(r′)).</summary>
    private Derivation ReadOtherWay(RelationRecord r, Derivation reversed)
    {
        Derivation symmetric = Derivation.Rule($"symmetric({SymmetricName(r)})", reversed);
        return r.Symmetric ? symmetric : Derivation.Rule(InverseRule(r), symmetric);
    }

    /// <summary>
    /// A proof of a fact of r, or (<paramref name="ofInverse"/>) of its inverse r′, read as one of r
    /// in the asked direction: through the inverse, and (<paramref name="otherWay"/>) through the
    /// symmetry declared on r or on r′, a rule each. Read through r′'s symmetry after the inverse
    /// step, a fact of r′ took the inverse step twice (one rule more, which loses ties with proofs
    /// no longer): r′'s symmetry turns it first.
    /// </summary>
    private Derivation ReadAs(RelationRecord r, Derivation proof, bool ofInverse, bool otherWay)
    {
        if (!ofInverse)
        {
            return otherWay ? ReadOtherWay(r, proof) : proof;
        }

        if (otherWay && !r.Symmetric)
        {
            return Derivation.Rule(InverseRule(r), Derivation.Rule($"symmetric({relations[r.InverseId].Name})", proof));
        }

        Derivation inverse = Derivation.Rule(InverseRule(r), proof);
        return otherWay ? Derivation.Rule($"symmetric({r.Name})", inverse) : inverse;
    }

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
    private string[]? _rules;

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

    /// <summary>Whether only the facts tell this proof and <paramref name="other"/> apart.</summary>
    public bool TiesWith(Derivation other) => Kind == other.Kind && Steps == other.Steps && Confidence == other.Confidence;

    public bool IsBetterThan(Derivation other) =>
        Kind != other.Kind ? Kind < other.Kind
        : Steps != other.Steps ? Steps < other.Steps
        : Confidence != other.Confidence ? Confidence > other.Confidence
        // Otherwise the proof over the earliest stored facts: which is found first depends on the
        // order of the adjacency lists, which deletes and reopens change.
        : StoredEdges.AsSpan().SequenceCompareTo(other.StoredEdges) < 0;

    /// <summary>The stored edges used, left to right, each once. Kept once computed (a derivation
    /// never changes): tied derivations compare them at every offer.</summary>
    public int[] StoredEdges => _storedEdges ??= RuleText is null ? [Edge] : Distinct(Premises.Select(premise => premise.StoredEdges));

    /// <summary>The rules applied, innermost first, each once; kept as <see cref="StoredEdges"/> is.</summary>
    public string[] Rules => _rules ??= RuleText is null ? [] : Distinct(Premises.Select(premise => premise.Rules).Append([RuleText]));

    /// <summary>
    /// The items of <paramref name="lists"/>, in order, each once. Built from the
    /// lists the premises keep rather than by walking the tree: a proof whose premises share a
    /// sub-proof unfolds to a tree exponentially larger than itself, and one of L facts took L²
    /// steps to list them (a list searched per fact), uncounted by the work bound, under the read
    /// lock: minutes for proofs of 2¹⁵ facts.
    /// </summary>
    private static T[] Distinct<T>(IEnumerable<T[]> lists)
    {
        var list = new List<T>();
        // Most proofs hold a few facts and rules: searched in the list, without a set to allocate.
        HashSet<T>? seen = null;
        foreach (T[] items in lists)
        {
            foreach (T item in items)
            {
                if (list.Count < SmallProof ? !list.Contains(item) : (seen ??= [.. list]).Add(item))
                {
                    list.Add(item);
                }
            }
        }

        return [.. list];
    }

    /// <summary>Up to this many items <see cref="Distinct"/> searches its list instead of a set.</summary>
    private const int SmallProof = 16;
}
