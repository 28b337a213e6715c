using System.Diagnostics.CodeAnalysis;

namespace AssocDB.Engine.Storage;

/// <summary>
/// A collection's ingest marks: per session, its last durable sequence. Their number is bounded by
/// reusing ids: once <see cref="DatabaseOptions.IngestSessionsKept"/> sessions have marks, a new
/// session takes the id of the least recently written one, whose mark its record replaces in the
/// state store, so neither memory nor the store grows with the number of sessions ever run.
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

    /// <summary>Every id in use, 0 … count − 1, each with the mark that holds it.</summary>
    private readonly List<IngestMark> _byId = [];

    /// <summary>The marks, least recently written first (ties, among marks stored before
    /// <see cref="IngestMark.Written"/> was kept, by id).</summary>
    private readonly SortedSet<(long Written, int Id)> _byAge = [];

    /// <summary>How many ids are in use: the number of marks, and of their records in the store.</summary>
    public int Count => _byId.Count;

    /// <summary>Every mark, by id.</summary>
    public IEnumerable<IngestMark> All => _byId;

    public bool TryGet(string session, [NotNullWhen(true)] out IngestMark? mark) => _bySession.TryGetValue(session, out mark);

    /// <summary>The id a new mark of <paramref name="session"/> takes: its own when it has one; else
    /// the next one while fewer than <paramref name="kept"/> are in use; else the least recently
    /// written mark's, which the new one replaces. (When fewer are kept than are in use, after the
    /// limit was lowered, new sessions replace old ones and the number in use stays as it is.)</summary>
    public int IdFor(string session, int kept)
    {
        if (_bySession.TryGetValue(session, out IngestMark? mark))
        {
            return mark.Id;
        }

        return _byId.Count < kept ? _byId.Count : _byAge.Min.Id;
    }

    /// <summary>Records a mark (written, replayed or loaded), replacing the mark that held its id.</summary>
    public void Put(IngestMark mark)
    {
        if (mark.Id < _byId.Count)
        {
            IngestMark replaced = _byId[mark.Id];
            _byAge.Remove((replaced.Written, replaced.Id));
            _bySession.Remove(replaced.Session);
            _byId[mark.Id] = mark;
        }
        else
        {
            // Marks are loaded from the store in no particular order: an id may come before lower ones.
            while (_byId.Count < mark.Id)
            {
                _byId.Add(Placeholder);
            }

            _byId.Add(mark);
        }

        _bySession[mark.Session] = mark;
        _byAge.Add((mark.Written, mark.Id));
    }

    /// <summary>Holds an id not yet loaded; every id below the largest has a record, so none is left once all are.</summary>
    private static readonly IngestMark Placeholder = new(-1, "", -1, long.MinValue);
}
