using System.Buffers;
using System.Collections;
using System.Runtime.CompilerServices;
using System.Text;

namespace AssocDB.Engine.Model;

/// <summary>
/// Facts to ingest, held as their names' characters in one pooled buffer and a small struct per fact
/// rather than as a <see cref="FactInput"/> and three strings each: a bulk load's server read those
/// off the wire for every fact, about 170 bytes of garbage per fact, almost all of it names the
/// collection already stores. Planning resolves stored names from the characters and makes strings
/// only of new ones. Indexing or enumerating makes a <see cref="FactInput"/> per fact, for callers
/// that want them; the engine does not. Not thread-safe while being filled; <see cref="Dispose"/>
/// returns the buffers to the pool once nothing reads the facts any more (an ingest that was given
/// them has completed).
/// </summary>
public sealed class PackedFacts : IReadOnlyList<FactInput>, IDisposable
{
    private Fact[]? _facts;
    private char[]? _chars;
    private int _count;
    private int _charCount;

    /// <summary>Room for <paramref name="facts"/> facts whose names hold <paramref name="utf8Bytes"/>
    /// bytes of UTF-8 in all; either grows when exceeded.</summary>
    public PackedFacts(int facts, int utf8Bytes)
    {
        _facts = ArrayPool<Fact>.Shared.Rent(Math.Max(facts, 1));
        // UTF-8 never takes fewer UTF-16 code units than bytes.
        _chars = ArrayPool<char>.Shared.Rent(Math.Max(utf8Bytes, 1));
    }

    /// <inheritdoc />
    public int Count
    {
        get
        {
            ObjectDisposedException.ThrowIf(_facts is null, this);
            return _count;
        }
    }

    /// <summary>The fact at <paramref name="index"/>, made as a new <see cref="FactInput"/>.</summary>
    public FactInput this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
            return new(Head(index).ToString(), Relation(index).ToString(), Tail(index).ToString(), Weight(index), Payload(index));
        }
    }

    /// <summary>Adds a fact whose names are UTF-8 (ill-formed sequences decode to U+FFFD, as
    /// <see cref="Encoding.UTF8"/> decodes them).</summary>
    public void Add(ReadOnlySpan<byte> head, ReadOnlySpan<byte> relation, ReadOnlySpan<byte> tail, float weight = 1f, IReadOnlyDictionary<string, string>? payload = null)
    {
        ObjectDisposedException.ThrowIf(_facts is null, this);
        if (_count == _facts.Length)
        {
            _facts = Grown(_facts, _count, 2 * _count);
        }

        _facts[_count++] = new Fact(Append(head), Append(relation), Append(tail), weight, payload);
    }

    /// <summary>Returns the buffers to the pool; the facts are gone.</summary>
    public void Dispose()
    {
        if (_facts is not null)
        {
            ArrayPool<Fact>.Shared.Return(_facts, clearArray: true);
            ArrayPool<char>.Shared.Return(_chars!);
            (_facts, _chars) = (null, null);
        }
    }

    /// <inheritdoc />
    public IEnumerator<FactInput> GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // The engine reads these for indices below a Count it has read, several times per fact while
    // planning, so they check neither (a disposed batch fails at Count).
    internal ReadOnlySpan<char> Head(int index) => Chars(_facts![index].Head);

    internal ReadOnlySpan<char> Relation(int index) => Chars(_facts![index].Relation);

    internal ReadOnlySpan<char> Tail(int index) => Chars(_facts![index].Tail);

    internal float Weight(int index) => _facts![index].Weight;

    internal IReadOnlyDictionary<string, string>? Payload(int index) => _facts![index].Payload;

    private ReadOnlySpan<char> Chars(Name name) => new(_chars, name.Start, name.Length);

    private Name Append(ReadOnlySpan<byte> utf8)
    {
        if (_charCount + utf8.Length > _chars!.Length)
        {
            _chars = Grown(_chars, _charCount, Math.Max(2 * _chars.Length, _charCount + utf8.Length));
        }

        int length = Encoding.UTF8.GetChars(utf8, _chars.AsSpan(_charCount));
        var name = new Name(_charCount, length);
        _charCount += length;
        return name;
    }

    private static T[] Grown<T>(T[] array, int used, int size)
    {
        T[] grown = ArrayPool<T>.Shared.Rent(size);
        array.AsSpan(0, used).CopyTo(grown);
        ArrayPool<T>.Shared.Return(array, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        return grown;
    }

    private readonly record struct Name(int Start, int Length);

    private readonly record struct Fact(Name Head, Name Relation, Name Tail, float Weight, IReadOnlyDictionary<string, string>? Payload);
}
