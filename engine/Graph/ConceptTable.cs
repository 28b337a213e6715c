using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Concept names, metadata and row ids. Ids are dense rows of the concept matrix; a deleted
/// concept's id goes to a free list and is reused (lowest first, so replay is deterministic and the
/// matrix stays compact).
/// </summary>
/// <remarks>
/// Names are found through an open-addressing table of slots, each a name's hash and id in one
/// long, compared against the names list. A bulk load looks up two names per fact, each a few cache
/// misses at random (slot, name reference, name); <see cref="FindIds"/> resolves many at once and
/// fetches each step's memory for all of them before the next step reads it, so the misses overlap.
/// Hashes are the runtime's randomized string hashes, so crafted names cannot pile up in one place.
/// </remarks>
internal sealed class ConceptTable
{
    private const int FirstSlotCount = 1024;

    private readonly List<string?> _names = [];
    private readonly List<IReadOnlyDictionary<string, string>> _metadata = [];
    private readonly List<int> _deletes = [];
    private readonly IdSpace _ids = new();

    /// <summary>Empty (0), or a name's hash in the high half and its id + 1 in the low; at most half full.</summary>
    private long[] _slots = new long[FirstSlotCount];
    private int _count;

    public int Count => _count;

    /// <summary>One past the highest id ever used.</summary>
    public int IdLimit => _ids.Limit;

    public bool TryGetId(string name, out int id)
    {
        id = Find(name, Hash(name));
        return id >= 0;
    }

    /// <summary>The id of each name, or −1 where none is stored; the same answers as
    /// <see cref="TryGetId"/>, for many names at a time.</summary>
    public void FindIds<TNames>(TNames names, Span<int> ids)
        where TNames : INameList
    {
        ReadOnlySpan<string?> stored = CollectionsMarshal.AsSpan(_names);
        Span<int> hashes = names.Count <= 2048 ? stackalloc int[names.Count] : new int[names.Count];
        for (int i = 0; i < names.Count; i++)
        {
            hashes[i] = Hash(names[i]);
            CacheHint.Prefetch(ref _slots[Home(hashes[i])]);
        }

        // The first slot holding a name's hash is almost always its own: fetch the reference to the
        // name there, then the name, then compare.
        for (int i = 0; i < names.Count; i++)
        {
            ids[i] = FirstWithHash(hashes[i]);
            if (ids[i] >= 0)
            {
                CacheHint.Prefetch(ref Unsafe.AsRef(in stored[ids[i]]));
            }
        }

        for (int i = 0; i < names.Count; i++)
        {
            if (ids[i] >= 0 && stored[ids[i]] is { } name)
            {
                CacheHint.Prefetch(ref MemoryMarshal.GetReference(name.AsSpan()));
            }
        }

        for (int i = 0; i < names.Count; i++)
        {
            if (ids[i] < 0 || !stored[ids[i]].AsSpan().SequenceEqual(names[i]))
            {
                ids[i] = Find(names[i], hashes[i]);
            }
        }
    }

    public bool IsLive(int id) => id >= 0 && id < _names.Count && _names[id] is not null;

    public string Name(int id) => _names[id] ?? throw new InvalidOperationException($"concept id {id} is not live");

    public IReadOnlyDictionary<string, string> Metadata(int id) => _metadata[id];

    /// <summary>How often <paramref name="id"/> has been deleted: a concept deleted and added again
    /// under its name takes the same id (the lowest free) and, without a vector given, the same
    /// vector, and only this tells it from the one before.</summary>
    public int Deletes(int id) => id < _deletes.Count ? _deletes[id] : 0;

    /// <summary>Ids free below the limit, lowest first; new ids continue from the limit.</summary>
    public IEnumerable<int> FreeIds => _ids.Free;

    public void Put(ConceptRecord concept)
    {
        _ids.Use(concept.Id);
        while (_names.Count <= concept.Id)
        {
            _names.Add(null);
            _metadata.Add(RecordCodec.EmptyMap);
            _deletes.Add(0);
        }

        if (_names[concept.Id] is { } previous && previous != concept.Name)
        {
            RemoveName(previous, Hash(previous));
        }

        // A name another id held moves to this one, as a dictionary entry would be overwritten.
        int hash = Hash(concept.Name);
        RemoveName(concept.Name, hash);
        _names[concept.Id] = concept.Name;
        _metadata[concept.Id] = concept.Metadata;
        AddName(hash, concept.Id);
    }

    public void Delete(int id)
    {
        if (!IsLive(id))
        {
            return;
        }

        RemoveName(_names[id]!, Hash(_names[id]));
        _names[id] = null;
        _metadata[id] = RecordCodec.EmptyMap;
        _deletes[id]++;
        _ids.Release(id);
    }

    /// <summary>The runtime's randomized hash of a name's characters (a string's own, for a string).</summary>
    private static int Hash(ReadOnlySpan<char> name) => string.GetHashCode(name);

    private int Mask => _slots.Length - 1;

    private int Home(int hash) => hash & Mask;

    private static long Slot(int hash, int id) => ((long)hash << 32) | (uint)(id + 1);

    private static int HashOf(long slot) => (int)(slot >> 32);

    private static int IdOf(long slot) => (int)(uint)slot - 1;

    /// <summary>The id in the first slot holding <paramref name="hash"/>, or −1.</summary>
    private int FirstWithHash(int hash)
    {
        for (int i = Home(hash); _slots[i] != 0; i = (i + 1) & Mask)
        {
            if (HashOf(_slots[i]) == hash)
            {
                return IdOf(_slots[i]);
            }
        }

        return -1;
    }

    /// <summary>The id of <paramref name="name"/>, or −1.</summary>
    private int Find(ReadOnlySpan<char> name, int hash) => SlotOf(name, hash) is int slot and >= 0 ? IdOf(_slots[slot]) : -1;

    /// <summary>The slot holding <paramref name="name"/>, or −1.</summary>
    private int SlotOf(ReadOnlySpan<char> name, int hash)
    {
        for (int i = Home(hash); _slots[i] != 0; i = (i + 1) & Mask)
        {
            if (HashOf(_slots[i]) == hash && _names[IdOf(_slots[i])].AsSpan().SequenceEqual(name))
            {
                return i;
            }
        }

        return -1;
    }

    private void AddName(int hash, int id)
    {
        if (2 * (_count + 1) > _slots.Length)
        {
            Grow();
        }

        int i = Home(hash);
        while (_slots[i] != 0)
        {
            i = (i + 1) & Mask;
        }

        _slots[i] = Slot(hash, id);
        _count++;
    }

    /// <summary>Removes a name's slot, moving later slots of its run back so that every name stays
    /// reachable from its home slot without gaps (no tombstones to accumulate).</summary>
    private void RemoveName(ReadOnlySpan<char> name, int hash)
    {
        int hole = SlotOf(name, hash);
        if (hole < 0)
        {
            return;
        }

        for (int i = (hole + 1) & Mask; _slots[i] != 0; i = (i + 1) & Mask)
        {
            int home = Home(HashOf(_slots[i]));
            // The slot may fill the hole unless its home lies cyclically in (hole, i].
            bool homeAfterHole = hole <= i ? home > hole && home <= i : home > hole || home <= i;
            if (!homeAfterHole)
            {
                _slots[hole] = _slots[i];
                hole = i;
            }
        }

        _slots[hole] = 0;
        _count--;
    }

    private void Grow()
    {
        long[] old = _slots;
        _slots = new long[old.Length * 2];
        foreach (long slot in old)
        {
            if (slot != 0)
            {
                int i = Home(HashOf(slot));
                while (_slots[i] != 0)
                {
                    i = (i + 1) & Mask;
                }

                _slots[i] = slot;
            }
        }
    }
}

/// <summary>Names that <see cref="ConceptTable.FindIds"/> looks up together, as characters.</summary>
internal interface INameList
{
    int Count { get; }

    ReadOnlySpan<char> this[int index] { get; }
}
