using System.Buffers;
using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;

namespace AssocDB.Engine;

/// <summary>A write's facts as validation and planning read them: names as characters, taken from
/// <see cref="PackedFacts"/> without making strings, or from <see cref="FactInput"/>s.</summary>
internal readonly struct FactReader(IReadOnlyList<FactInput> facts)
{
    private readonly PackedFacts? _packed = facts as PackedFacts;

    public int Count => facts.Count;

    /// <summary>The fact at <paramref name="i"/>, read with one call into a list of
    /// <see cref="FactInput"/>s (each is several calls otherwise, per fact of a bulk load).</summary>
    public Fact this[int i] => _packed is { } packed
        ? new Fact(packed.Head(i), packed.Relation(i), packed.Tail(i), packed.Weight(i), packed.Payload(i), null)
        : Of(facts[i]);

    /// <summary>Whether the fact is missing (a null in a list of <see cref="FactInput"/>s).</summary>
    public bool IsNull(int i) => _packed is null && facts[i] is null;

    public ReadOnlySpan<char> Relation(int i) => _packed is { } packed ? packed.Relation(i) : facts[i].Relation;

    /// <summary>The concept ids of the heads and tails of facts [start, start + count), interleaved
    /// (−1 where not stored), looked up together so that their cache misses overlap.</summary>
    public void FindConceptIds(ConceptTable concepts, int start, int count, Span<int> ids)
    {
        if (_packed is { } packed)
        {
            concepts.FindIds(new PackedHeadsAndTails(packed, start, count), ids);
            return;
        }

        // The names are read out once: the lookup reads each several times.
        string[] names = ArrayPool<string>.Shared.Rent(2 * count);
        for (int i = 0; i < count; i++)
        {
            (names[2 * i], names[(2 * i) + 1]) = (facts[start + i].Head, facts[start + i].Tail);
        }

        concepts.FindIds(new Names(names, 2 * count), ids);
        ArrayPool<string>.Shared.Return(names, clearArray: true);
    }

    private static Fact Of(FactInput fact) => new(fact.Head, fact.Relation, fact.Tail, fact.Weight, fact.Payload, fact);

    /// <summary>One fact's fields, and the <see cref="FactInput"/> they were read from, if any.</summary>
    public readonly ref struct Fact(ReadOnlySpan<char> head, ReadOnlySpan<char> relation, ReadOnlySpan<char> tail, float weight, IReadOnlyDictionary<string, string>? payload, FactInput? source)
    {
        public ReadOnlySpan<char> Head { get; } = head;

        public ReadOnlySpan<char> Relation { get; } = relation;

        public ReadOnlySpan<char> Tail { get; } = tail;

        public float Weight { get; } = weight;

        public IReadOnlyDictionary<string, string>? Payload { get; } = payload;

        /// <summary>The fact as given, whose name strings a new concept or relation keeps; null for
        /// packed facts, whose names become strings only when new.</summary>
        public FactInput? Source { get; } = source;
    }

    private readonly struct PackedHeadsAndTails(PackedFacts facts, int start, int count) : INameList
    {
        public int Count => 2 * count;

        public ReadOnlySpan<char> this[int index] => (index & 1) == 0 ? facts.Head(start + (index >> 1)) : facts.Tail(start + (index >> 1));
    }

    private readonly struct Names(string[] names, int count) : INameList
    {
        public int Count => count;

        public ReadOnlySpan<char> this[int index] => names[index];
    }
}
