using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Concept names, metadata and row ids. Ids are dense rows of the concept matrix; a deleted
/// concept's id goes to a free list and is reused (lowest first, so replay is deterministic and the
/// matrix stays compact).
/// </summary>
internal sealed class ConceptTable
{
    private readonly List<string?> _names = [];
    private readonly List<IReadOnlyDictionary<string, string>> _metadata = [];
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly SortedSet<int> _free = [];

    public int Count => _ids.Count;

    /// <summary>One past the highest id ever used.</summary>
    public int IdLimit => _names.Count;

    public bool TryGetId(string name, out int id) => _ids.TryGetValue(name, out id);

    public bool IsLive(int id) => id >= 0 && id < _names.Count && _names[id] is not null;

    public string Name(int id) => _names[id] ?? throw new InvalidOperationException($"concept id {id} is not live");

    public IReadOnlyDictionary<string, string> Metadata(int id) => _metadata[id];

    /// <summary>Ids free below the limit, lowest first; new ids continue from the limit.</summary>
    public IEnumerable<int> FreeIds => _free;

    public void Put(ConceptRecord concept)
    {
        while (_names.Count <= concept.Id)
        {
            if (_names.Count < concept.Id)
            {
                _free.Add(_names.Count);
            }

            _names.Add(null);
            _metadata.Add(RecordCodec.EmptyMap);
        }

        if (_names[concept.Id] is { } previous && previous != concept.Name)
        {
            _ids.Remove(previous);
        }

        if (_free.Count > 0)
        {
            _free.Remove(concept.Id);
        }

        _names[concept.Id] = concept.Name;
        _metadata[concept.Id] = concept.Metadata;
        _ids[concept.Name] = concept.Id;
    }

    public void Delete(int id)
    {
        if (!IsLive(id))
        {
            return;
        }

        _ids.Remove(_names[id]!);
        _names[id] = null;
        _metadata[id] = RecordCodec.EmptyMap;
        _free.Add(id);
    }
}
