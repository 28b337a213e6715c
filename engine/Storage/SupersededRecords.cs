using System.Collections;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Estimates how many bytes of the state store's log updates and deletes have made dead, for the
/// compaction trigger. FASTER updates a record in place while it is in the log's mutable tail and
/// appends a new copy once a checkpoint has made it read-only, so a record counts once per
/// checkpoint interval, and only if it was stored before the interval began (records inserted since
/// are still in the tail). An interval whose appends outgrew the mutable tail may have pushed
/// records out of it and then copied them again, so there every update counts.
/// </summary>
internal sealed class SupersededRecords(long recovered)
{
    // Per kind: ids below the limit were stored before the interval began; the touched ones have
    // been counted in it. Concepts and edges can number millions, hence bits.
    private readonly Kind _concepts = new();
    private readonly Kind _edges = new();
    private readonly Kind _relations = new();
    private readonly Kind _marks = new();

    // This interval's updates: counted once per record, and every one.
    private long _firstTouches;
    private long _everyUpdate;

    /// <summary>The estimate, in bytes, since the last compaction up to the last ended interval
    /// (carried across restarts by the checkpoint).</summary>
    public long Bytes { get; private set; } = recovered;

    /// <summary>Ends an interval, adding what it superseded: every update when its appends outgrew
    /// the mutable tail, else each record's first.</summary>
    public void EndInterval(bool outgrewMutableTail)
    {
        Bytes += outgrewMutableTail ? _everyUpdate : _firstTouches;
        _firstTouches = _everyUpdate = 0;
    }

    /// <summary>Starts an interval: everything stored so far is read-only in the store's log.</summary>
    public void StartInterval(int conceptIds, int edgeIds, int relationIds, int markIds)
    {
        _concepts.Start(conceptIds);
        _edges.Start(edgeIds);
        _relations.Start(relationIds);
        _marks.Start(markIds);
    }

    /// <summary>The log was compacted: nothing superseded remains in it.</summary>
    public void Compacted() => Bytes = 0;

    /// <summary>A stored record of this kind and id is being replaced or deleted.</summary>
    public void Supersede(RecordKind kind, int id, long bytes)
    {
        Kind records = kind switch
        {
            RecordKind.Concept => _concepts,
            RecordKind.Edge => _edges,
            RecordKind.Relation => _relations,
            RecordKind.IngestMark => _marks,
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown record kind"),
        };
        _everyUpdate += bytes;
        if (records.FirstTouch(id))
        {
            _firstTouches += bytes;
        }
    }

    private sealed class Kind
    {
        private int _storedBefore;
        private BitArray? _touched;

        public void Start(int storedBefore)
        {
            _storedBefore = storedBefore;
            _touched = null;
        }

        public bool FirstTouch(int id)
        {
            if (id >= _storedBefore)
            {
                return false;
            }

            _touched ??= new BitArray(_storedBefore);
            if (_touched[id])
            {
                return false;
            }

            _touched[id] = true;
            return true;
        }
    }
}
