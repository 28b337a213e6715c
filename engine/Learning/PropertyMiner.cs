using System.Diagnostics;
using AssocDB.Engine.Model;

namespace AssocDB.Engine.Learning;

/// <summary>
/// Learns relation properties from the facts by counting, AMIE-style: symmetry, inverse pairs,
/// transitivity and length-2 composition rules, each with support, body size, standard and PCA
/// confidence and head coverage (<see cref="RuleEvidence"/>).
/// </summary>
/// <remarks>
/// Exact counts, no sampling. Symmetry and inverses cost O(F log deg) for F facts. Compositions
/// enumerate every path <c>x –First→ z –Second→ y</c> once, so they cost the number of such paths
/// (Σ over facts of the tail's out-degree) times a log factor for de-duplication: about 0.1 s for
/// WN18RR's 87 k facts, much more on dense graphs such as FB15k-237. The PCA counts use the
/// subject x of the head atom, as in the original AMIE. Duplicate facts are counted once. A fact
/// from a concept to itself is no evidence of a rule that reverses or chains facts: a loop's reverse
/// is itself (every relation with loops looked symmetric, at a PCA confidence of 1 where only loops
/// had their reverse), and a path through a loop repeats its other fact (r(x, x) ∧ r(x, y) confirmed
/// transitivity with no chain stored). Loops are left out of those counts, bodies included.
/// </remarks>
public sealed class PropertyMiner
{
    /// <summary>The most relations a graph may have to be mined: the counts are tables of every
    /// pair of relations (four of m × m longs, 128 MiB at this limit).</summary>
    public const int MaxRelations = 2048;

    private readonly MiningOptions _options;

    /// <summary>Creates a miner with the given thresholds (defaults when null).</summary>
    public PropertyMiner(MiningOptions? options = null) => _options = options ?? new MiningOptions();

    /// <summary>Mines every property over <paramref name="facts"/>. Returns an error when a fact
    /// names a concept outside <c>0..conceptCount-1</c> or a relation outside
    /// <c>0..relationCount-1</c>. Progress reports the share of composition work done (0..1).</summary>
    public Result<MiningResult> Mine(
        ReadOnlySpan<Triple> facts,
        int conceptCount,
        int relationCount,
        IProgress<double>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (conceptCount < 0)
        {
            return EngineError.Invalid("conceptCount", "must not be negative");
        }

        if (relationCount < 0)
        {
            return EngineError.Invalid("relationCount", "must not be negative");
        }

        if (_options.MaxRules < 1)
        {
            return EngineError.Invalid("max_rules", $"is {_options.MaxRules}; at least 1 rule of each kind is kept");
        }

        if (relationCount > MaxRelations)
        {
            return new EngineError(ErrorCode.FailedPrecondition, "collection", $"has {relationCount} relations; mining counts every pair of them, and takes at most {MaxRelations}");
        }

        for (int i = 0; i < facts.Length; i++)
        {
            Triple f = facts[i];
            if ((uint)f.Head >= (uint)conceptCount || (uint)f.Tail >= (uint)conceptCount)
            {
                return EngineError.Invalid($"facts[{i}]", $"concept id outside 0..{conceptCount - 1}");
            }

            if ((uint)f.Relation >= (uint)relationCount)
            {
                return EngineError.Invalid($"facts[{i}].relation", $"relation id outside 0..{relationCount - 1}");
            }
        }

        var stopwatch = Stopwatch.StartNew();
        var graph = new FactIndex(facts, conceptCount, relationCount);
        var inverses = new BestRules<InverseRule>(_options.MaxRules, rule => rule.Evidence);
        var compositions = new BestRules<CompositionRule>(_options.MaxRules, rule => rule.Evidence);
        long[] loops = SelfLoops(graph);
        SymmetryRule[] symmetry = MineInverses(graph, loops, inverses, cancellationToken);
        TransitivityRule[] transitivity = MineCompositions(graph, loops, compositions, progress, cancellationToken);

        return new MiningResult(
            symmetry,
            transitivity,
            [.. symmetry.Where(r => _options.Accepts(r.Evidence)).OrderByDescending(r => r.Evidence.PcaConfidence).ThenByDescending(r => r.Evidence.Support)],
            inverses.Best(),
            [.. transitivity.Where(r => _options.Accepts(r.Evidence)).OrderByDescending(r => r.Evidence.PcaConfidence).ThenByDescending(r => r.Evidence.Support)],
            compositions.Best(),
            graph.FactCount,
            stopwatch.Elapsed,
            inverses.Unkept + compositions.Unkept);
    }

    /// <summary>Each relation's facts <c>a r a</c>. A rule's conclusion about a concept and itself
    /// is no answer (the reasoner drops such answers as cycles), so those facts are neither body
    /// pairs nor head facts a rule could cover.</summary>
    private static long[] SelfLoops(FactIndex graph)
    {
        long[] loops = new long[graph.RelationCount];
        foreach (Triple fact in graph.ByHeadRelation)
        {
            if (fact.Head == fact.Tail)
            {
                loops[fact.Relation]++;
            }
        }

        return loops;
    }

    /// <summary>Rules <c>Body(a, b) ⇒ Head(b, a)</c> for every pair of relations, the accepted ones
    /// into <paramref name="inverses"/>; the diagonal, returned, is symmetry.</summary>
    private SymmetryRule[] MineInverses(FactIndex graph, long[] loops, BestRules<InverseRule> inverses, CancellationToken cancellationToken)
    {
        int m = graph.RelationCount;
        long[] support = new long[m * m];
        long[] pcaBody = new long[m * m];
        for (int a = 0; a < graph.ConceptCount; a++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int i = graph.HeadStart[a]; i < graph.HeadStart[a + 1]; i++)
            {
                int body = graph.ByHeadRelation[i].Relation;
                int b = graph.ByHeadRelation[i].Tail;
                if (b == a)
                {
                    continue;
                }

                foreach (int head in graph.RelationsBetween(b, a))
                {
                    support[body * m + head]++;
                }

                foreach (int head in graph.OutRelations(b))
                {
                    pcaBody[body * m + head]++;
                }
            }
        }

        var symmetry = new SymmetryRule[m];
        for (int body = 0; body < m; body++)
        {
            for (int head = 0; head < m; head++)
            {
                var evidence = new RuleEvidence(
                    support[body * m + head], graph.RelationSize[body] - loops[body], pcaBody[body * m + head], graph.RelationSize[head] - loops[head]);
                if (body == head)
                {
                    symmetry[body] = new SymmetryRule(body, evidence);
                }
                else if (_options.Accepts(evidence))
                {
                    inverses.Add(new InverseRule(body, head, evidence));
                }
            }
        }

        return symmetry;
    }

    /// <summary>Rules <c>First(x, z) ∧ Second(z, y) ⇒ Head(x, y)</c>, grouped by First so the
    /// counters are m × m, not m³: the accepted ones into <paramref name="compositions"/>, and
    /// transitivity (all three the same), returned. Paths back to their start (x → z → x) are no
    /// body pairs: counted, a rule such as child_of ∘ parent_of ⇒ sibling_of lost confidence for
    /// every child, as "x is x's sibling" is never stored.</summary>
    private TransitivityRule[] MineCompositions(
        FactIndex graph, long[] loops, BestRules<CompositionRule> compositions, IProgress<double>? progress, CancellationToken cancellationToken)
    {
        int m = graph.RelationCount;
        long n = graph.ConceptCount;
        var transitivity = new TransitivityRule[m];
        long[] bodySize = new long[m];
        long[] support = new long[m * m];
        long[] pcaBody = new long[m * m];
        long[] pairsBySecond = new long[m];
        var paths = new List<long>();
        // The seconds with a body pair: the only rows of the tables that are not zero, so the only
        // ones cleared and read (all m rows cost m³ over a graph of many relations).
        var touched = new List<int>();
        for (int first = 0; first < m; first++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (int second in touched)
            {
                bodySize[second] = 0;
                support.AsSpan(second * m, m).Clear();
                pcaBody.AsSpan(second * m, m).Clear();
            }

            touched.Clear();
            ReadOnlySpan<Triple> firstFacts = graph.OfRelation(first);
            int start = 0;
            while (start < firstFacts.Length)
            {
                // Per subject too: one relation of millions of facts walks billions of paths.
                cancellationToken.ThrowIfCancellationRequested();
                int x = firstFacts[start].Head;
                int end = start;
                paths.Clear();
                for (; end < firstFacts.Length && firstFacts[end].Head == x; end++)
                {
                    int z = firstFacts[end].Tail;
                    if (z == x)
                    {
                        continue;
                    }

                    foreach (Triple next in graph.OutEdges(z))
                    {
                        if (next.Tail != z && next.Tail != x)
                        {
                            paths.Add(next.Relation * n + next.Tail);
                        }
                    }
                }

                start = end;
                CountDistinctEndpoints(graph, x, paths, bodySize, support, pcaBody, pairsBySecond, touched);
            }

            int diagonal = (first * m) + first;
            transitivity[first] = new TransitivityRule(first, new RuleEvidence(support[diagonal], bodySize[first], pcaBody[diagonal], graph.RelationSize[first] - loops[first]));
            // In relation order, as rules of equal confidence and support are listed in it.
            touched.Sort();
            foreach (int second in touched)
            {
                for (int head = 0; head < m; head++)
                {
                    long cell = support[(second * m) + head];
                    if (cell == 0 || (first == second && second == head))
                    {
                        continue;
                    }

                    var evidence = new RuleEvidence(cell, bodySize[second], pcaBody[(second * m) + head], graph.RelationSize[head] - loops[head]);
                    if (_options.Accepts(evidence))
                    {
                        compositions.Add(new CompositionRule(first, second, head, evidence));
                    }
                }
            }

            progress?.Report((first + 1) / (double)m);
        }

        return transitivity;
    }

    /// <summary>Accepted rules of one kind, the best <paramref name="capacity"/> of them kept: by PCA
    /// confidence, then support, then the order they were found in. Those past it are pruned a
    /// capacity at a time, so keeping costs a sort per capacity of rules.</summary>
    private sealed class BestRules<T>(int capacity, Func<T, RuleEvidence> evidence)
    {
        private List<T> _kept = [];
        private long _accepted;

        /// <summary>Accepted rules left out.</summary>
        public long Unkept => _accepted - Math.Min(_accepted, capacity);

        public void Add(T rule)
        {
            _accepted++;
            _kept.Add(rule);
            if (_kept.Count >= 2L * capacity)
            {
                _kept = Best();
            }
        }

        /// <summary>The rules kept, best first.</summary>
        public List<T> Best() =>
            [.. _kept.OrderByDescending(rule => evidence(rule).PcaConfidence).ThenByDescending(rule => evidence(rule).Support).Take(capacity)];
    }

    /// <summary>Counts, for one subject x, the distinct (Second, y) path ends: each is one body
    /// pair for rules with that Second; it supports every Head stored between x and y, and counts
    /// towards the PCA body of every Head that x has some fact of.</summary>
    private static void CountDistinctEndpoints(
        FactIndex graph, int x, List<long> paths, long[] bodySize, long[] support, long[] pcaBody, long[] pairsBySecond, List<int> touched)
    {
        if (paths.Count == 0)
        {
            return;
        }

        int m = graph.RelationCount;
        long n = graph.ConceptCount;
        Span<long> ends = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(paths);
        ends.Sort();
        long previous = -1;
        foreach (long end in ends)
        {
            if (end == previous)
            {
                continue;
            }

            previous = end;
            int second = (int)(end / n);
            int y = (int)(end % n);
            if (bodySize[second]++ == 0)
            {
                touched.Add(second);
            }

            pairsBySecond[second]++;
            foreach (int head in graph.RelationsBetween(x, y))
            {
                support[second * m + head]++;
            }
        }

        // The ends are sorted by second, so each second with pairs comes up once, in order.
        ReadOnlySpan<int> subjectRelations = graph.OutRelations(x);
        int last = -1;
        foreach (long end in ends)
        {
            int second = (int)(end / n);
            if (second == last)
            {
                continue;
            }

            last = second;
            long pairs = pairsBySecond[second];
            pairsBySecond[second] = 0;
            foreach (int head in subjectRelations)
            {
                pcaBody[second * m + head] += pairs;
            }
        }
    }
}
