using System.Numerics;
using System.Text.RegularExpressions;
using AssocDB.Engine.Model;

namespace AssocDB.Engine.Tests.Support;

/// <summary>
/// An exhaustive reference for what <c>related</c> answers under learned properties, computed
/// bottom up over bit sets: the pairs (a, b) with <c>a r b</c> provable at depth k are the stored
/// facts (those of a relation learned symmetric also read the other way), plus compositions and
/// transitivity applied to the pairs of depth k − 1, then learned inverses read until nothing
/// changes (reading one costs no depth). It follows the reasoner's documented semantics, not its
/// code: it knows nothing of proofs, search order, cycles or work bounds. Declared properties are
/// not modelled: the collections it checks have none.
/// </summary>
internal sealed partial class LearnedRuleClosure
{
    private readonly Dictionary<string, int> _concepts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _relations = new(StringComparer.Ordinal);
    private readonly List<string> _conceptNames = [];

    /// <summary>Pairs by relation, head and tail word: <c>_pairs[r][a]</c> holds the tails b of <c>a r b</c>.</summary>
    private readonly ulong[][][] _pairs;
    private readonly ulong[][][] _stored;

    public LearnedRuleClosure(IEnumerable<FactKey> facts, IEnumerable<LearnedProperty> rules, int depth)
    {
        FactKey[] factList = [.. facts];
        LearnedProperty[] ruleList = [.. rules];
        foreach (FactKey fact in factList)
        {
            ConceptId(fact.Head);
            ConceptId(fact.Tail);
            RelationId(fact.Relation);
        }

        foreach (LearnedProperty rule in ruleList)
        {
            foreach (string? name in new[] { rule.Relation, rule.Inverse, rule.First, rule.Second })
            {
                if (name is not null)
                {
                    RelationId(name);
                }
            }
        }

        _stored = Empty();
        foreach (FactKey fact in factList)
        {
            Set(_stored, _relations[fact.Relation], _concepts[fact.Head], _concepts[fact.Tail]);
        }

        (int Relation, int Other)[] inverses = [.. ruleList
            .Where(rule => rule.Kind == PropertyKind.Inverse && rule.Inverse != rule.Relation)
            .Select(rule => (_relations[rule.Relation], _relations[rule.Inverse!]))];
        (int Head, int First, int Second)[] compositions = [.. ruleList
            .Where(rule => rule.Kind == PropertyKind.Composition)
            .Select(rule => (_relations[rule.Relation], _relations[rule.First!], _relations[rule.Second!]))
            .Concat(ruleList.Where(rule => rule.Kind == PropertyKind.Transitive)
                .Select(rule => (_relations[rule.Relation], _relations[rule.Relation], _relations[rule.Relation])))];
        int[] symmetric = [.. ruleList.Where(rule => rule.Kind == PropertyKind.Symmetric).Select(rule => _relations[rule.Relation])];

        // Learned symmetry reads stored facts the other way, not derived ones.
        ulong[][][] storedBothWays = Copy(_stored);
        foreach (int relation in symmetric)
        {
            foreach ((int head, int tail) in PairsOf(_stored, relation))
            {
                Set(storedBothWays, relation, tail, head);
            }
        }

        _pairs = ReadInverses(Copy(storedBothWays), inverses);
        for (int k = 1; k <= depth; k++)
        {
            ulong[][][] next = Copy(storedBothWays);
            foreach ((int head, int first, int second) in compositions)
            {
                for (int a = 0; a < _concepts.Count; a++)
                {
                    ulong[] middles = _pairs[first][a];
                    for (int i = 0; i < middles.Length; i++)
                    {
                        for (ulong word = middles[i]; word != 0; word &= word - 1)
                        {
                            Or(next[head][a], _pairs[second][(i * 64) + BitOperations.TrailingZeroCount(word)]);
                        }
                    }
                }
            }

            _pairs = ReadInverses(next, inverses);
        }
    }

    /// <summary>
    /// What <c>related(concept, relation)</c> answers: every x with <c>concept relation x</c>, the
    /// concept itself only when that fact is stored (a derived self-answer is dropped).
    /// </summary>
    public IReadOnlySet<string> Answers(string concept, string relation)
    {
        if (!_concepts.TryGetValue(concept, out int c) || !_relations.TryGetValue(relation, out int r))
        {
            return new HashSet<string>();
        }

        return Bits(_pairs[r][c])
            .Where(x => x != c || IsSet(_stored, r, c, c))
            .Select(x => _conceptNames[x])
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The applied properties by the text a proof names them with (<c>a ∘ b ⇒ r</c>,
    /// <c>r = inverse(s)</c>, <c>symmetric(r)</c>, <c>transitive(r)</c>), without the confidence the
    /// reasoner appends (<c>[learned 0.9]</c>).</summary>
    public static IReadOnlyDictionary<string, LearnedProperty> ByProofText(IEnumerable<LearnedProperty> applied) =>
        applied.ToDictionary(
            property => property.Kind switch
            {
                PropertyKind.Composition => $"{property.First} ∘ {property.Second} ⇒ {property.Relation}",
                PropertyKind.Inverse => $"{property.Relation} = inverse({property.Inverse})",
                PropertyKind.Symmetric => $"symmetric({property.Relation})",
                _ => $"transitive({property.Relation})",
            },
            StringComparer.Ordinal);

    /// <summary>
    /// Whether a proof, as <c>related</c> returns it, proves <c>concept relation answer</c> within
    /// <paramref name="depth"/> from its own facts and rules alone: every fact stored in
    /// <paramref name="stored"/>, every rule one of <paramref name="applied"/> (see
    /// <see cref="ByProofText"/>). Null when it does; otherwise what is wrong.
    /// </summary>
    public static string? CheckProof(
        string concept, string relation, Answer answer, int depth, IReadOnlySet<FactKey> stored, IReadOnlyDictionary<string, LearnedProperty> applied)
    {
        string asked = $"{concept} {relation} {answer.Concept}";
        if (answer.Proof.Facts.FirstOrDefault(fact => !stored.Contains(fact)) is { } invented)
        {
            return $"{asked}: proof uses {invented}, which is not stored";
        }

        var rules = new List<LearnedProperty>();
        foreach (string text in answer.Proof.Rules)
        {
            if (LearnedRule().Match(text) is not { Success: true } match || !applied.TryGetValue(match.Groups["rule"].Value, out LearnedProperty? rule))
            {
                return $"{asked}: proof uses '{text}', which is no rule applied";
            }

            rules.Add(rule);
        }

        if (answer.Kind != (rules.Count > 0 ? AnswerKind.Learned : AnswerKind.Stored))
        {
            return $"{asked}: kind {answer.Kind} with rules [{string.Join(", ", answer.Proof.Rules)}]";
        }

        return new LearnedRuleClosure(answer.Proof.Facts, rules, depth).Answers(concept, relation).Contains(answer.Concept) ? null
            : $"{asked}: {answer.Proof} does not prove it within depth {depth}";
    }

    [GeneratedRegex(@"^(?<rule>.+) \[learned [0-9.]+\]$")]
    private static partial Regex LearnedRule();

    private ulong[][][] ReadInverses(ulong[][][] pairs, (int Relation, int Other)[] inverses)
    {
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach ((int relation, int other) in inverses)
            {
                foreach ((int head, int tail) in PairsOf(pairs, other).ToArray())
                {
                    changed |= Set(pairs, relation, tail, head);
                }
            }
        }

        return pairs;
    }

    private int ConceptId(string name)
    {
        if (!_concepts.TryGetValue(name, out int id))
        {
            id = _concepts.Count;
            _concepts.Add(name, id);
            _conceptNames.Add(name);
        }

        return id;
    }

    private void RelationId(string name) => _relations.TryAdd(name, _relations.Count);

    private int Words => (_concepts.Count + 63) / 64;

    private ulong[][][] Empty() =>
        [.. Enumerable.Range(0, _relations.Count).Select(_ => Enumerable.Range(0, _concepts.Count).Select(_ => new ulong[Words]).ToArray())];

    private static ulong[][][] Copy(ulong[][][] pairs) =>
        [.. pairs.Select(heads => heads.Select(tails => (ulong[])tails.Clone()).ToArray())];

    private IEnumerable<(int Head, int Tail)> PairsOf(ulong[][][] pairs, int relation)
    {
        for (int head = 0; head < _concepts.Count; head++)
        {
            foreach (int tail in Bits(pairs[relation][head]))
            {
                yield return (head, tail);
            }
        }
    }

    private static bool Set(ulong[][][] pairs, int relation, int head, int tail)
    {
        ulong before = pairs[relation][head][tail / 64];
        pairs[relation][head][tail / 64] |= 1UL << (tail % 64);
        return pairs[relation][head][tail / 64] != before;
    }

    private static bool IsSet(ulong[][][] pairs, int relation, int head, int tail) => (pairs[relation][head][tail / 64] & (1UL << (tail % 64))) != 0;

    private static void Or(ulong[] into, ulong[] from)
    {
        for (int i = 0; i < into.Length; i++)
        {
            into[i] |= from[i];
        }
    }

    private static IEnumerable<int> Bits(ulong[] words)
    {
        for (int i = 0; i < words.Length; i++)
        {
            for (ulong word = words[i]; word != 0; word &= word - 1)
            {
                yield return (i * 64) + BitOperations.TrailingZeroCount(word);
            }
        }
    }
}
