using AssocDB.Engine.Graph;

namespace AssocDB.Engine.Tests.Graph;

// The edge columns grow by whole chunks past the first; what was written keeps its value, and
// what was never written reads as the default, on either side of every chunk boundary.
public sealed class ChunkedArrayTests
{
    [Fact]
    public void Elements_keep_their_values_as_the_array_grows_past_chunks()
    {
        var array = new ChunkedArray<long>(4);
        var written = new Dictionary<int, long> { [0] = -1 };
        array[0] = -1;
        for (int size = 5; size <= 6 * ChunkedArray<long>.ChunkLength; size = (size * 3) + 1)
        {
            array.EnsureCapacity(size);
            Assert.InRange(array.Capacity, size, Math.Max(2 * size, ChunkedArray<long>.ChunkLength));
            array[size - 1] = size;
            written[size - 1] = size;
        }

        Assert.Equal(5 * ChunkedArray<long>.ChunkLength, array.Capacity);
        for (int i = 0; i < array.Capacity; i++)
        {
            Assert.Equal(written.GetValueOrDefault(i), array[i]);
        }

        Assert.Throws<IndexOutOfRangeException>(() => array[array.Capacity]);
    }

    [Fact]
    public void A_small_array_stays_one_chunk_of_its_own_size()
    {
        var array = new ChunkedArray<int>(1024);
        array.EnsureCapacity(1000);
        Assert.Equal(1024, array.Capacity);
        array.EnsureCapacity(1025);
        Assert.Equal(2048, array.Capacity);
        array.EnsureCapacity(ChunkedArray<int>.ChunkLength + 1);
        Assert.Equal(2 * ChunkedArray<int>.ChunkLength, array.Capacity);
    }
}
