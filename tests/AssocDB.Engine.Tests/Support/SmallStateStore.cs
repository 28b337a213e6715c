using AssocDB.Engine.Storage;
using FASTER.core;

namespace AssocDB.Engine.Tests.Support;

/// <summary>A state store for checkpoint tests: 64 KiB log files and pages, so that a few records
/// span pages; edge records whose value is their id; and the check that a reopen recovers them.</summary>
internal static class SmallStateStore
{
    public static StateStore Open(string folder, INamedDeviceFactory? devices = null) =>
        new(folder, 1L << 16, 1L << 20, 1L << 16, devices ?? new LocalStorageNamedDeviceFactory());

    /// <summary>Edges [<paramref name="from"/>, <paramref name="to"/>), each value its id padded to
    /// <paramref name="valueBytes"/>.</summary>
    public static void Write(StateStore store, int from, int to, int valueBytes = sizeof(int))
    {
        using StateStore.Writer writer = store.BeginWrites();
        byte[] value = new byte[StateRecord.AddedBytes + valueBytes];
        for (int id = from; id < to; id++)
        {
            BitConverter.TryWriteBytes(value.AsSpan(StateRecord.AddedBytes), id);
            StateRecord.Seal(RecordKind.Edge, value.AsSpan(StateRecord.AddedBytes), value);
            writer.Upsert(RecordKind.Edge, id, value);
        }
    }

    /// <summary>Reopens the store in <paramref name="folder"/> and checks that it recovered the
    /// checkpoint at <paramref name="logAddress"/>, holding edges [0, <paramref name="records"/>).</summary>
    public static void AssertRecovers(string folder, long logAddress, int records)
    {
        using StateStore store = Open(folder);
        Assert.True(store.RecoveredCheckpoint);
        Assert.Equal(logAddress, store.RecoveredLogAddress);
        var ids = new List<int>();
        store.ForEach((_, id, _) => ids.Add(id));
        Assert.Equal(Enumerable.Range(0, records), ids.Order());
    }
}
