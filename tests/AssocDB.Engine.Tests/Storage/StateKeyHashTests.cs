using System.Text.Json.Nodes;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;
using FASTER.core;

namespace AssocDB.Engine.Tests.Storage;

// Guards the state store's key hash (StateKeyHash): consecutive ids share a bucket seven at a time,
// the keys of one bucket's chain carry different tags, a new store records that it uses the hash,
// and a store written before it keeps FASTER's own hash, so its checkpointed index still finds
// every record.
public sealed class StateKeyHashTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(1);

    private const int TagShift = 64 - 14;

    [Fact]
    public void Seven_consecutive_ids_share_a_bucket_and_the_next_seven_take_the_next()
    {
        const long Buckets = 1L << 19;
        for (uint id = 0; id < 7000; id++)
        {
            long bucket = StateKeyHash.Hash((byte)RecordKind.Edge, id) & (Buckets - 1);
            long first = StateKeyHash.Hash((byte)RecordKind.Edge, 0) & (Buckets - 1);
            Assert.Equal((first + (id / 7)) & (Buckets - 1), bucket);
        }
    }

    // Keys with the same bucket and tag are told apart only by reading their records: the hash
    // promises different tags within a chain for indexes of 4 MiB (2^16 buckets) and more.
    [Theory]
    [InlineData(16)]
    [InlineData(19)]
    public void Keys_sharing_a_bucket_have_different_tags(int bucketBits)
    {
        long mask = (1L << bucketBits) - 1;
        var seen = new HashSet<(long Bucket, long Tag)>();
        foreach ((RecordKind kind, uint count) in new[] { (RecordKind.Edge, 3_000_000u), (RecordKind.Concept, 300_000u), (RecordKind.Relation, 1000u), (RecordKind.IngestMark, 100u) })
        {
            for (uint id = 0; id < count; id++)
            {
                long hash = StateKeyHash.Hash((byte)kind, id);
                Assert.True(seen.Add((hash & mask, (long)((ulong)hash >> TagShift))), $"{kind} {id} repeats the bucket and tag of an earlier key");
            }
        }
    }

    [Fact]
    public void The_hash_reads_the_key_that_FASTER_hands_it()
    {
        Span<byte> key = stackalloc byte[StateRecord.KeyBytes];
        StateRecord.WriteKey(key, RecordKind.Concept, 123_456);
        SpanByte bytes = SpanByte.FromFixedSpan(key);
        Assert.Equal(StateKeyHash.Hash((byte)RecordKind.Concept, 123_456), StateKeyHash.Instance.GetHashCode64(ref bytes));
    }

    [Fact]
    public async Task A_new_store_orders_its_keys_and_finds_its_records_after_a_reopen()
    {
        using var folder = new TempDirectory();
        string state = Path.Combine(folder.Path, "state");
        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 20))
        {
            Assert.True(store.Layout.OrderedKeys);
            StateLogBytes.WriteEdges(store, 0, 3000, Payload);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));
        }

        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(state, "layout.json")))!["OrderedKeys"]!.GetValue<bool>());
        await AssertRewritesFoundAsync(state, orderedKeys: true);
    }

    // A store from before ordered keys: its checkpointed index holds each key where FASTER's own
    // hash put it, which lookups (compaction's among them) follow, so it keeps that hash.
    [Fact]
    public async Task A_store_from_before_ordered_keys_keeps_its_hash_and_finds_its_records()
    {
        using var folder = new TempDirectory();
        string state = Path.Combine(folder.Path, "state");
        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 20, new LocalStorageNamedDeviceFactory(), orderedKeys: false))
        {
            StateLogBytes.WriteEdges(store, 0, 3000, Payload);
            Assert.Null(await store.CheckpointAsync(100, 1, 0, Generous));
        }

        JsonObject layout = JsonNode.Parse(File.ReadAllText(Path.Combine(state, "layout.json")))!.AsObject();
        Assert.False(layout["OrderedKeys"]!.GetValue<bool>());
        // As the versions before wrote it: no word of ordered keys at all.
        layout.Remove("OrderedKeys");
        File.WriteAllText(Path.Combine(state, "layout.json"), layout.ToJsonString());

        await AssertRewritesFoundAsync(state, orderedKeys: false);
    }

    private static readonly Dictionary<string, string> Payload = new() { ["v"] = "1" };

    /// <summary>Reopens a checkpointed store of edges 0..2999, rewrites 1000..3999 (half of them new)
    /// and deletes 0..99, compacts, checkpoints and reopens: each step must see every live edge once.</summary>
    private static async Task AssertRewritesFoundAsync(string state, bool orderedKeys)
    {
        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 20))
        {
            Assert.Equal(orderedKeys, store.Layout.OrderedKeys);
            Assert.Equal(Enumerable.Range(0, 3000), EdgeIds(store));
            StateLogBytes.WriteEdges(store, 1000, 4000, new Dictionary<string, string> { ["v"] = "2" });
            using (StateStore.Writer writer = store.BeginWrites())
            {
                for (int id = 0; id < 100; id++)
                {
                    writer.Delete(RecordKind.Edge, id);
                }
            }

            Assert.Equal(Enumerable.Range(100, 3900), EdgeIds(store));
            store.Compact();
            Assert.Equal(Enumerable.Range(100, 3900), EdgeIds(store));
            Assert.Null(await store.CheckpointAsync(200, 2, 0, Generous));
        }

        using (var store = new StateStore(state, 1L << 16, 1L << 20, 1L << 20))
        {
            Assert.Equal(Enumerable.Range(100, 3900), EdgeIds(store));
        }
    }

    /// <summary>The ids of the live edges, sorted; each must appear once.</summary>
    private static List<int> EdgeIds(StateStore store)
    {
        var ids = new List<int>();
        store.ForEach((kind, id, _) =>
        {
            if (kind == RecordKind.Edge)
            {
                ids.Add(id);
            }
        });
        ids.Sort();
        return ids;
    }
}
