using AssocDB.Engine.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The bidirectional key–value memory of one relation. Its facts <c>(hᵢ, tᵢ)</c> are row ids of a
/// <see cref="ConceptMatrix"/>; on every recall their rows are gathered from W on the device by index
/// (never copied into storage), so the memory always reads the current vectors.
/// </summary>
/// <remarks>
/// <para>Logits are β times the matrix's own metric score of each key against x (cosine, dot or
/// l2, exactly as search scores them), so β means the same thing as a search score gap. Facts
/// whose key row was removed score −∞ and get no weight.</para>
/// <list type="bullet">
/// <item>Forward: <c>y = Vᵀ softmax(β·s(K, x))</c> — x is a head, y its tail.</item>
/// <item>Reverse: <c>y = Kᵀ softmax(β·s(V, x))</c> — x is a tail, y its head.</item>
/// <item>Auto: one softmax over both ends, <c>y = Vᵀ w_K + Kᵀ w_V</c> with
/// <c>[w_K; w_V] = softmax(β·[s(K, x); s(V, x)])</c>. The gate is therefore
/// <c>α(x) = Z_K / (Z_K + Z_V)</c> with <c>Z = Σ exp(β·s)</c>: a smooth version of comparing the
/// best match at each end, so the end x matches better answers, and a fuzzy x that matches both
/// gets both, weighted. <see cref="RecallOutcome.ForwardWeight"/> reports α.</item>
/// <item>A symmetric relation holds both ways, so every direction reads it as Auto: a query at
/// either end gets the other end, and both ends contribute.</item>
/// </list>
/// <para>Memory and work: gathering K and V whole cost facts × d floats per call (3 GB for 100 k
/// facts at d = 4096, where the matrix was 16 MB). Instead a recall gathers each distinct row the
/// facts name once to score it, streams the facts in chunks through a softmax with a running max
/// (the per-row weights accumulated so far are rescaled when the max rises), and gathers the rows
/// again to sum them by weight. So a call holds one chunk of rows plus a few floats per distinct
/// row, and its work grows with the distinct rows × d plus the facts, not with facts × d.</para>
/// <para>The fact and row indexes are uploaded to the device once, when the memory is built, and
/// read a chunk at a time as views: a recall copies no index. They hold 16 bytes a fact and 8 a
/// distinct row for as long as the memory lives (a collection keeps a relation's memory until a
/// write changes the relation or its facts, and disposes it then).</para>
/// <para>Choosing β: with unit vectors in d = 128 and 10 k facts, the true key's logit exceeds the
/// best of the others by about β·(0.9 − 0.35) for an input at cosine 0.9, while the others' total
/// weight grows like n·exp(β²/2d). Measured there (cosine 0.9 inputs, top-1): β = 4 recalls
/// under half, β = 8 to 128 all; 32 (the API default) leaves margin (see RecallMemoryTests).</para>
/// </remarks>
public sealed class RecallMemory : IDisposable
{
    /// <summary>
    /// Default bound on what one chunk holds. 32 MiB is 2,048 gathered rows at d = 4096, enough that
    /// each chunk's few tensor launches and its one host sync are noise next to the gather, while
    /// concurrent recalls hold 32 MiB each however large the relation; at d = 128 it is 65 k rows
    /// and a million facts, so most relations take one chunk.
    /// </summary>
    internal const long DefaultChunkBytes = 32L << 20;

    /// <summary>What a fact costs in a chunk: a float score at each end and their weights, with the
    /// room its two slots took when each chunk copied them (kept so that chunks stay as they were).</summary>
    private const int BytesPerFact = 32;

    private readonly ConceptMatrix _matrix;

    /// <summary>The distinct rows the facts name, ascending (so gathers walk W forward), on the device.</summary>
    private readonly Tensor _rows;

    /// <summary>How many distinct rows, and the highest (−1 when none).</summary>
    private readonly int _rowCount;
    private readonly int _highestRow;

    /// <summary>Per fact, the index into <see cref="_rows"/> of its head, on the device.</summary>
    private readonly Tensor _headSlots;

    /// <summary>Per fact, the index into <see cref="_rows"/> of its tail, on the device.</summary>
    private readonly Tensor _tailSlots;

    private readonly int _rowsPerChunk;
    private readonly int _factsPerChunk;

    /// <summary>Creates the memory of a relation over <paramref name="matrix"/>.</summary>
    /// <param name="matrix">The concept matrix the fact rows index.</param>
    /// <param name="heads">Head row of each fact.</param>
    /// <param name="tails">Tail row of each fact, same length.</param>
    /// <param name="symmetric">Whether the relation is symmetric (every direction reads both ends).</param>
    public RecallMemory(ConceptMatrix matrix, ReadOnlySpan<int> heads, ReadOnlySpan<int> tails, bool symmetric = false)
        : this(matrix, heads, tails, symmetric, DefaultChunkBytes)
    {
    }

    /// <summary>Creates the memory with a chunk bound of <paramref name="chunkBytes"/> (tests force
    /// small chunks with it; results equal one chunk's up to float rounding).</summary>
    internal RecallMemory(ConceptMatrix matrix, ReadOnlySpan<int> heads, ReadOnlySpan<int> tails, bool symmetric, long chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkBytes);
        if (heads.Length != tails.Length)
        {
            throw new ArgumentException($"{heads.Length} heads but {tails.Length} tails", nameof(tails));
        }

        foreach (int head in heads)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(head, nameof(heads));
        }

        foreach (int tail in tails)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(tail, nameof(tails));
        }

        _matrix = matrix;
        int[] rows = [.. heads, .. tails];
        Array.Sort(rows);
        int[] distinct = rows[..Distinct(rows)];
        _rowCount = distinct.Length;
        _highestRow = distinct.Length > 0 ? distinct[^1] : -1;
        FactCount = heads.Length;
        _rows = Upload(distinct, matrix.Device);
        _headSlots = Upload(Slots(distinct, heads), matrix.Device);
        _tailSlots = Upload(Slots(distinct, tails), matrix.Device);
        _rowsPerChunk = (int)Math.Clamp(chunkBytes / ((long)matrix.Dimension * sizeof(float)), 1, int.MaxValue);
        _factsPerChunk = (int)Math.Clamp(chunkBytes / BytesPerFact, 1, int.MaxValue);
        Symmetric = symmetric;
    }

    /// <summary>Number of facts.</summary>
    public int FactCount { get; }

    /// <summary>Whether every direction reads both ends.</summary>
    public bool Symmetric { get; }

    /// <summary>Recalls the vector associated with <paramref name="x"/> and its <paramref name="k"/>
    /// nearest concepts (by <paramref name="search"/>, honouring <paramref name="filter"/>).
    /// Returns InvalidArgument for a wrong-length or non-finite x, a β that is not positive and
    /// finite, or k outside 1..<see cref="VectorSearch.MaxK"/>; FailedPrecondition when a fact row
    /// lies beyond the matrix or no fact has a live row at the end being read.</summary>
    public Result<RecallOutcome> Recall(
        ReadOnlySpan<float> x, RecallDirection direction, float beta, int k, VectorSearch search, SearchFilter? filter = null)
    {
        ArgumentNullException.ThrowIfNull(search);
        if (x.Length != _matrix.Dimension)
        {
            return EngineError.Invalid("vector", $"expected {_matrix.Dimension} floats, got {x.Length}");
        }

        foreach (float value in x)
        {
            if (!float.IsFinite(value))
            {
                return EngineError.Invalid("vector", "components must be finite");
            }
        }

        if (!float.IsFinite(beta) || beta <= 0)
        {
            return EngineError.Invalid("beta", $"beta must be positive and finite, got {beta}");
        }

        if (k is < 1 or > VectorSearch.MaxK)
        {
            return EngineError.Invalid("k", $"k must be 1..{VectorSearch.MaxK}, got {k}");
        }

        if (_highestRow >= _matrix.RowLimit)
        {
            return new EngineError(ErrorCode.FailedPrecondition, "relation", $"fact row {_highestRow} is beyond the matrix's rows");
        }

        if (Symmetric)
        {
            direction = RecallDirection.Auto;
        }

        // Forward reads the keys (heads) and answers with their tails; reverse the other way round.
        bool readsHeads = direction != RecallDirection.Reverse;
        bool readsTails = direction != RecallDirection.Forward;
        float[] recalled;
        float forwardWeight;
        QueryBatch query = QueryBatch.Prepare(x, _matrix.Dimension, _matrix.Metric);
        using Scalar betaScalar = beta.ToScalar();
        using (NewDisposeScope())
        {
            Device device = _matrix.Device;
            Tensor prepared = tensor(query.Vectors).to(device);
            Tensor rowScores = empty(_rowCount, device: device);
            ForEachRowChunk((start, index, rows) =>
                rowScores.narrow(0, start, rows.shape[0]).copy_(Scores(rows, index, prepared, query.Offsets[0])));

            // The softmax streamed over the facts: each row's weight (the exp of the logits of the
            // facts that answer with it) is accumulated against the largest logit seen so far, and
            // everything accumulated is rescaled when a chunk raises it. Logits are taken as
            // β·(s − max), never β·s − β·max: β·s overflows float32 for a large β (a score of 4 at
            // β = 1e38 is +∞, and the weights then come out NaN).
            Tensor rowWeights = zeros(_rowCount, device: device);
            float runningMax = float.NegativeInfinity;
            float headMass = 0;
            float tailMass = 0;
            for (int start = 0; start < FactCount; start += _factsPerChunk)
            {
                using var step = NewDisposeScope();
                int count = Math.Min(_factsPerChunk, FactCount - start);
                Tensor headSlots = _headSlots.narrow(0, start, count);
                Tensor tailSlots = _tailSlots.narrow(0, start, count);
                Tensor? headScores = readsHeads ? rowScores.index_select(0, headSlots) : null;
                Tensor? tailScores = readsTails ? rowScores.index_select(0, tailSlots) : null;
                float chunkMax = Math.Max(
                    headScores?.max().item<float>() ?? float.NegativeInfinity,
                    tailScores?.max().item<float>() ?? float.NegativeInfinity);
                if (float.IsNegativeInfinity(chunkMax))
                {
                    // Every fact here has a removed row at the end being read: no weight, and
                    // skipping keeps −∞ − (−∞) from turning the weights NaN.
                    continue;
                }

                if (chunkMax > runningMax)
                {
                    float rescale = MathF.Exp((runningMax - chunkMax) * beta);
                    using Scalar rescaleScalar = rescale.ToScalar();
                    rowWeights.mul_(rescaleScalar);
                    headMass *= rescale;
                    tailMass *= rescale;
                    runningMax = chunkMax;
                }

                using Scalar runningMaxScalar = runningMax.ToScalar();
                if (headScores is not null)
                {
                    Tensor weights = headScores.sub_(runningMaxScalar).mul_(betaScalar).exp_();
                    rowWeights.index_add_(0, tailSlots, weights, alpha: TorchScalars.One);
                    headMass += weights.sum().item<float>();
                }

                if (tailScores is not null)
                {
                    Tensor weights = tailScores.sub_(runningMaxScalar).mul_(betaScalar).exp_();
                    rowWeights.index_add_(0, headSlots, weights, alpha: TorchScalars.One);
                    tailMass += weights.sum().item<float>();
                }
            }

            if (float.IsNegativeInfinity(runningMax))
            {
                return new EngineError(ErrorCode.FailedPrecondition, "relation", "no fact has a live concept at the end being read");
            }

            using Scalar massScalar = (headMass + tailMass).ToScalar();
            rowWeights.div_(massScalar);
            Tensor y = zeros(_matrix.Dimension, device: device);
            // mv (not matmul): a shape mismatch throws instead of killing the process.
            ForEachRowChunk((start, _, rows) => y.add_(rows.t().mv(rowWeights.narrow(0, start, rows.shape[0])), TorchScalars.One));

            forwardWeight = direction switch
            {
                RecallDirection.Forward => 1f,
                RecallDirection.Reverse => 0f,
                _ => headMass / (headMass + tailMass),
            };
            recalled = y.cpu().data<float>().ToArray();
        }

        Result<SearchHits[]> nearest = search.Search(_matrix, recalled, k, filter);
        return nearest.IsOk ? new RecallOutcome(recalled, nearest.Value[0], forwardWeight) : nearest.Error!;
    }

    /// <summary>Gathers the distinct rows from W a chunk at a time and hands each chunk (its first
    /// slot, its row ids on the device, its rows) to <paramref name="use"/>; the chunk's tensors are
    /// freed before the next is gathered, which is what bounds a recall's memory.</summary>
    private void ForEachRowChunk(Action<int, Tensor, Tensor> use)
    {
        for (int start = 0; start < _rowCount; start += _rowsPerChunk)
        {
            using var step = NewDisposeScope();
            Tensor index = _rows.narrow(0, start, Math.Min(_rowsPerChunk, _rowCount - start));
            use(start, index, _matrix.Weights.index_select(0, index));
        }
    }

    /// <summary>Length of the run of distinct values that <paramref name="sorted"/> starts with
    /// once its duplicates are moved out of the way (in place).</summary>
    private static int Distinct(int[] sorted)
    {
        int distinct = 0;
        foreach (int value in sorted)
        {
            if (distinct == 0 || sorted[distinct - 1] != value)
            {
                sorted[distinct++] = value;
            }
        }

        return distinct;
    }

    /// <summary>The index of each of <paramref name="rows"/> in <paramref name="distinctRows"/>.</summary>
    private static int[] Slots(int[] distinctRows, ReadOnlySpan<int> rows)
    {
        var slots = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            slots[i] = Array.BinarySearch(distinctRows, rows[i]);
        }

        return slots;
    }

    /// <summary>An index array as an int64 tensor on the device (index_select and index_add_ take
    /// int64), owned by the memory whatever dispose scope it is built in.</summary>
    private static Tensor Upload(int[] values, Device device)
    {
        using (NewDisposeScope())
        {
            return tensor(values.AsMemory(), [values.Length], ScalarType.Int64).to(device).DetachFromDisposeScope();
        }
    }

    /// <summary>Frees the indexes on the device; the memory must not be used after.</summary>
    public void Dispose()
    {
        _rows.Dispose();
        _headSlots.Dispose();
        _tailSlots.Dispose();
    }

    /// <summary>The canonical score (see <see cref="QueryBatch"/>) of each gathered row: l2 from the
    /// differences (taken in place: the rows are a fresh gather of this chunk, and a copy would
    /// double its memory), the other metrics from the product; −∞ for a free row (its offset).</summary>
    private Tensor Scores(Tensor rows, Tensor index, Tensor prepared, float queryOffset)
    {
        Tensor offsets = _matrix.OffsetsOnDevice.index_select(0, index);
        if (_matrix.Metric == Metric.L2)
        {
            return rows.sub_(prepared).pow_(TorchScalars.Two).sum(1).neg_()
                .masked_fill_(offsets.eq(TorchScalars.NegativeInfinity), TorchScalars.NegativeInfinity);
        }

        using Scalar queryOffsetScalar = queryOffset.ToScalar();
        // mv (not matmul): a shape mismatch throws instead of killing the process.
        return rows.mv(prepared).mul_(_matrix.ScalesOnDevice.index_select(0, index)).add_(offsets, TorchScalars.One).sub_(queryOffsetScalar);
    }
}
