using System.Numerics;

namespace AssocDB.Engine.Graph;

/// <summary>
/// A Bloom filter over stored facts (head, relation, tail): "absent" is certain, "maybe" must be
/// checked against the facts themselves. A bulk load is mostly new facts, and without it each one's
/// duplicate check scanned the adjacency list of an endpoint, a cache miss per edge of that list.
/// </summary>
/// <remarks>
/// A fact sets two bits of one 64-bit word (one cache line per probe). The filter holds
/// <see cref="BitsPerFact"/> bits per fact of its capacity, which gives about 5 % false "maybe"s
/// when full, fewer before; rebuilt from the live facts when full, it is sized for at least twice
/// as many, so it costs 1 to 4 bytes per live fact (1 when full) and each fact is added about
/// twice. Removed facts keep their bits (a Bloom filter cannot clear them) until that rebuild:
/// they only add "maybe"s. Not thread-safe: a rebuild replaces the words and the shift that indexes
/// them one after the other, so a probe beside it could read a stored fact as absent. It is probed
/// only by the collection's single writer (planning and applying a batch never overlap), never by
/// queries.
/// </remarks>
internal sealed class FactFilter
{
    private const int BitsPerFact = 8;
    private const int MinWords = 64;

    private ulong[] _words = new ulong[MinWords];
    private int _indexShift = 64 - BitOperations.Log2(MinWords);
    private int _added;

    /// <summary>Whether the filter has taken as many facts as it is sized for, and must be
    /// <see cref="Reset"/> before more are added.</summary>
    public bool Full => _added >= Capacity;

    private int Capacity => (int)Math.Min(int.MaxValue, (long)_words.Length * 64 / BitsPerFact);

    /// <summary>False when the fact is certainly not in the filter.</summary>
    public bool MayContain(int head, int relation, int tail)
    {
        ulong hash = Hash(head, relation, tail);
        ulong bits = Bits(hash);
        return (_words[hash >> _indexShift] & bits) == bits;
    }

    /// <summary>Starts loading the word a fact's probe reads (see <see cref="CacheHint"/>): the
    /// filter is megabytes, and facts arrive in no order.</summary>
    public void Prefetch(int head, int relation, int tail)
    {
        if (CacheHint.Supported)
        {
            CacheHint.Prefetch(ref _words[Hash(head, relation, tail) >> _indexShift]);
        }
    }

    public void Add(int head, int relation, int tail)
    {
        ulong hash = Hash(head, relation, tail);
        _words[hash >> _indexShift] |= Bits(hash);
        _added++;
    }

    /// <summary>Empties the filter and sizes it for at least twice <paramref name="facts"/>, the
    /// facts about to be added again, so that as many can follow before it is full.</summary>
    public void Reset(int facts)
    {
        long words = Math.Max(MinWords, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, facts) * 2 * BitsPerFact / 64));
        if (words != _words.Length)
        {
            _words = new ulong[words];
            _indexShift = 64 - BitOperations.Log2((ulong)words);
        }
        else
        {
            Array.Clear(_words);
        }

        _added = 0;
    }

    /// <summary>The word is picked by the hash's top bits, the two bits by its lowest twelve.</summary>
    private static ulong Bits(ulong hash) => (1UL << (int)(hash & 63)) | (1UL << (int)((hash >> 6) & 63));

    /// <summary>The three ids mixed into 64 bits (splitmix64's finalizer): ids are dense and
    /// small, so their bits must reach every bit of the result.</summary>
    private static ulong Hash(int head, int relation, int tail)
    {
        ulong hash = ((((ulong)(uint)head) << 32) | (uint)tail) ^ ((ulong)(uint)relation * 0x9E3779B97F4A7C15UL);
        hash = (hash ^ (hash >> 30)) * 0xBF58476D1CE4E5B9UL;
        hash = (hash ^ (hash >> 27)) * 0x94D049BB133111EBUL;
        return hash ^ (hash >> 31);
    }
}
