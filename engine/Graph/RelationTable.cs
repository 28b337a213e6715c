using AssocDB.Engine.Storage;

namespace AssocDB.Engine.Graph;

/// <summary>
/// Relations by id and name, with their declared properties. Relations are never deleted (facts
/// and rules refer to them by id), so ids are simply their creation order.
/// </summary>
internal sealed class RelationTable
{
    private readonly List<RelationRecord> _relations = [];
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idsByChars;
    private readonly List<long> _factCounts = [];

    public RelationTable()
    {
        _ids = new(StringComparer.Ordinal);
        _idsByChars = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Count => _relations.Count;

    public bool TryGetId(string name, out int id) => _ids.TryGetValue(name, out id);

    /// <summary>As <see cref="TryGetId(string, out int)"/>, for a name's characters.</summary>
    public bool TryGetId(ReadOnlySpan<char> name, out int id) => _idsByChars.TryGetValue(name, out id);

    public RelationRecord this[int id] => _relations[id];

    public IEnumerable<RelationRecord> All => _relations;

    public long FactCount(int id) => _factCounts[id];

    public void AddFacts(int id, int delta) => _factCounts[id] += delta;

    /// <summary>The inverse relation's id, or −1.</summary>
    public int Inverse(int id) => _relations[id].InverseId;

    public void Put(RelationRecord relation)
    {
        if (relation.Id == _relations.Count)
        {
            _relations.Add(relation);
            _factCounts.Add(0);
        }
        else if (relation.Id < _relations.Count)
        {
            _ids.Remove(_relations[relation.Id].Name);
            _relations[relation.Id] = relation;
        }
        else
        {
            throw new InvalidDataException($"relation id {relation.Id} skips ids (have {_relations.Count})");
        }

        _ids[relation.Name] = relation.Id;
    }
}
