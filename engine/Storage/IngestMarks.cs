using System.Diagnostics.CodeAnalysis;

namespace AssocDB.Engine.Storage;

/// <summary>
/// A collection's ingest marks: per session, its last durable sequence. Their number is bounded by
/// reusing ids: once <see cref="DatabaseOptions.IngestSessionsKept"/> sessions have marks, a new
/// session takes the id of the least recently written one, whose mark its record replaces in the
/// state store, so neither memory nor the store grows with the number of sessions ever run. When
/// more marks are held than the limit (it was lowered, or the collection predates it), a new
/// session's batch also deletes the oldest marks beyond it.
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
    /// to <paramref name="evicted"/>, to be deleted with the new mark's write, so that it leaves
    /// the <paramref name="kept"/> most recent.
    /// </summary>
    public int IdFor(string session, int kept, List<int> evicted)
    {
        if (_bySession.TryGetValue(session, out IngestMark? mark))
        {
            return mark.Id;
        }

        if (Count < kept)
        {
            return _free.Count > 0 ? _free.Min : _byId.Count;
        }

        int over = Count - kept;
        foreach ((_, int id) in _byAge.Skip(1).Take(over))
        {
            evicted.Add(id);
        }

        return _byAge.Min.Id;
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
