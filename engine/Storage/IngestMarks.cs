using System.Diagnostics.CodeAnalysis;

namespace AssocDB.Engine.Storage;

/// <summary>
/// A collection's ingest marks: per session, its last durable sequence. Their number is bounded by
/// reusing ids: once <see cref="DatabaseOptions.IngestSessionsKept"/> sessions have marks, a new
/// session takes the id of the least recently written one, whose mark its record replaces in the
/// state store, so neither memory nor the store grows with the number of sessions ever run. When
/// more marks are held than the limit (it was lowered, or the collection predates it), a new
/// session's batch also deletes the oldest marks beyond it, and moves kept marks above the limit
/// down to the ids freed, so that the ids in use stay 0 to the number of marks less one.
/// </summary>
/// <remarks>
/// Which id a new session takes is decided when its batch is planned and logged with the mark, so
/// replaying the log reproduces it whatever order the marks were loaded in. The recency order
/// survives restarts through <see cref="IngestMark.Written"/>, the log sequence of the batch that
/// last wrote the mark.
/// </remarks>
internal sealed class IngestMarks
{
    private readonly Dictionary<string, IngestMark> _bySession = new(StringComparer.Ordinal);

    /// <summary>The mark holding each id below the id limit; null for an id free since its mark was
    /// deleted (or not loaded yet: marks are loaded from the store in no particular order).</summary>
    private readonly List<IngestMark?> _byId = [];

    /// <summary>The free ids below the id limit, which new sessions take first, lowest first.</summary>
    private readonly SortedSet<int> _free = [];

    /// <summary>The marks, least recently written first (ties, among marks stored before
    /// <see cref="IngestMark.Written"/> was kept, by id).</summary>
    private readonly SortedSet<(long Written, int Id)> _byAge = [];

    /// <summary>How many marks there are (and records in the store).</summary>
    public int Count => _bySession.Count;

    /// <summary>One more than the highest id in use.</summary>
    public int IdLimit => _byId.Count;

    /// <summary>Every mark, by id.</summary>
    public IEnumerable<IngestMark> All => _byId.OfType<IngestMark>();

    public bool TryGet(string session, [NotNullWhen(true)] out IngestMark? mark) => _bySession.TryGetValue(session, out mark);

    /// <summary>
    /// The id a new mark of <paramref name="session"/> takes: its own when it has one; else a free
    /// one while fewer than <paramref name="kept"/> are in use; else the least recently written
    /// mark's, which the new one replaces. When <paramref name="kept"/> or more marks are held
    /// beyond that one (the limit was lowered since they were written), the next oldest are added
    /// to <paramref name="deleted"/>, to be deleted with the new mark's write, so that it leaves
    /// the <paramref name="kept"/> most recent.
    /// </summary>
    /// <remarks>
    /// The marks then left, the new one included, hold the ids below <paramref name="kept"/>: a kept
    /// mark above them is added to <paramref name="deleted"/> and, under a free id below, to
    /// <paramref name="moved"/> (with its write order), to be put after the deletes. Versions before
    /// marks could be deleted took each id missing below the highest for a mark: those that kept a
    /// placeholder for it stored that as a record in a rewrite of their store from memory, which
    /// then stopped the collection's open, and those before the limit gave a new session the number
    /// of marks as its id, which could be a kept session's, replacing its mark.
    /// </remarks>
    public int IdFor(string session, int kept, List<int> deleted, List<IngestMark> moved)
    {
        if (_bySession.TryGetValue(session, out IngestMark? mark))
        {
            return mark.Id;
        }

        if (Count < kept)
        {
            return _free.Count > 0 ? _free.Min : _byId.Count;
        }

        int replaced = _byAge.Min.Id;
        if (Count == kept && IdLimit == kept)
        {
            return replaced;
        }

        var dropped = new HashSet<int>(_byAge.Skip(1).Take(Count - kept).Select(age => age.Id));
        deleted.AddRange(dropped);
        var free = new Queue<int>(Enumerable.Range(0, kept).Where(id => id != replaced && (id >= _byId.Count || _byId[id] is null || dropped.Contains(id))));
        int newId = replaced;
        if (replaced >= kept)
        {
            deleted.Add(replaced);
            newId = free.Dequeue();
        }

        for (int id = kept; id < _byId.Count; id++)
        {
            if (id != replaced && !dropped.Contains(id) && _byId[id] is { } above)
            {
                deleted.Add(id);
                moved.Add(above with { Id = free.Dequeue() });
            }
        }

        return newId;
    }

    /// <summary>Records a mark (written, replayed or loaded), replacing the mark that held its id.</summary>
    public void Put(IngestMark mark)
    {
        if (mark.Id < _byId.Count)
        {
            Forget(mark.Id);
        }
        else
        {
            for (int id = _byId.Count; id < mark.Id; id++)
            {
                _byId.Add(null);
                _free.Add(id);
            }

            _byId.Add(null);
        }

        _byId[mark.Id] = mark;
        _free.Remove(mark.Id);
        _bySession[mark.Session] = mark;
        _byAge.Add((mark.Written, mark.Id));
    }

    /// <summary>Deletes the mark holding <paramref name="id"/> (written or replayed), freeing the id.</summary>
    public void Delete(int id)
    {
        if (id >= _byId.Count)
        {
            return;
        }

        Forget(id);
        _free.Add(id);
        // The id limit stays one above the highest id in use, as a load from the store finds it.
        while (_byId.Count > 0 && _byId[^1] is null)
        {
            _free.Remove(_byId.Count - 1);
            _byId.RemoveAt(_byId.Count - 1);
        }
    }

    private void Forget(int id)
    {
        if (_byId[id] is { } held)
        {
            _byAge.Remove((held.Written, held.Id));
            _bySession.Remove(held.Session);
            _byId[id] = null;
        }
    }
}
