namespace AssocDB.Engine.Graph;

/// <summary>
/// The dense ids of one table (concepts, which are also W's rows, or edges): one past the highest
/// ever used, and the free ones below it (never used, or released by a delete). This is the one
/// record of which ids are free; <see cref="IdAllocator"/> hands them out again lowest first, so
/// replay assigns the same ids and the rows they index stay compact.
/// </summary>
internal sealed class IdSpace
{
    private readonly SortedSet<int> _free = [];

    /// <summary>One past the highest id ever used.</summary>
    public int Limit { get; private set; }

    /// <summary>Ids free below the limit, lowest first; new ids continue from the limit.</summary>
    public IEnumerable<int> Free => _free;

    /// <summary>Marks <paramref name="id"/> in use; ids it skips past the limit become free.</summary>
    public void Use(int id)
    {
        for (int skipped = Limit; skipped < id; skipped++)
        {
            _free.Add(skipped);
        }

        Limit = Math.Max(Limit, id + 1);
        if (_free.Count > 0)
        {
            _free.Remove(id);
        }
    }

    /// <summary>Marks an id in use free again.</summary>
    public void Release(int id) => _free.Add(id);
}
