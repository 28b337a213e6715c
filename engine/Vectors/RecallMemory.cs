using AssocDB.Engine.Model;
using static TorchSharp.torch;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The bidirectional key–value memory of one relation. Its facts <c>(hᵢ, tᵢ)</c> are row ids of a
/// <see cref="ConceptMatrix"/>; on every recall <c>K = W[h]</c> and <c>V = W[t]</c> are gathered on
/// the device by index (never copied into storage), so the memory always reads the current vectors.
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
/// <para>Choosing β: with unit vectors in d = 128 and 10 k facts, the true key's logit exceeds the
/// best of the others by about β·(0.9 − 0.35) for an input at cosine 0.9, while the others' total
/// weight grows like n·exp(β²/2d). Measured there (cosine 0.9 inputs, top-1): β = 4 recalls
/// under half, β = 8 to 128 all; 32 (the API default) leaves margin (see RecallMemoryTests).</para>
/// </remarks>
public sealed class RecallMemory
{
    private readonly ConceptMatrix _matrix;
    private readonly long[] _heads;
    private readonly long[] _tails;
    private readonly long _maxRow = -1;

    /// <summary>Creates the memory of a relation over <paramref name="matrix"/>.</summary>
    /// <param name="matrix">The concept matrix the fact rows index.</param>
    /// <param name="heads">Head row of each fact.</param>
    /// <param name="tails">Tail row of each fact, same length.</param>
    /// <param name="symmetric">Whether the relation is symmetric (every direction reads both ends).</param>
    public RecallMemory(ConceptMatrix matrix, ReadOnlySpan<int> heads, ReadOnlySpan<int> tails, bool symmetric = false)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (heads.Length != tails.Length)
        {
            throw new ArgumentException($"{heads.Length} heads but {tails.Length} tails", nameof(tails));
        }

        _matrix = matrix;
        _heads = new long[heads.Length];
        _tails = new long[tails.Length];
        for (int i = 0; i < heads.Length; i++)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(heads[i], nameof(heads));
            ArgumentOutOfRangeException.ThrowIfNegative(tails[i], nameof(tails));
            _heads[i] = heads[i];
            _tails[i] = tails[i];
            _maxRow = Math.Max(_maxRow, Math.Max(heads[i], tails[i]));
        }

        Symmetric = symmetric;
    }

    /// <summary>Number of facts.</summary>
    public int FactCount => _heads.Length;

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

        if (_maxRow >= _matrix.RowLimit)
        {
            return new EngineError(ErrorCode.FailedPrecondition, "relation", $"fact row {_maxRow} is beyond the matrix's rows");
        }

        if (Symmetric)
        {
            direction = RecallDirection.Auto;
        }

        float[] recalled;
        float forwardWeight;
        QueryBatch query = QueryBatch.Prepare(x, _matrix.Dimension, _matrix.Metric);
        using (NewDisposeScope())
        {
            Device device = _matrix.Device;
            Tensor prepared = tensor(query.Vectors).to(device);
            Tensor heads = tensor(_heads).to(device);
            Tensor tails = tensor(_tails).to(device);
            Tensor keys = _matrix.Weights.index_select(0, heads);
            Tensor values = _matrix.Weights.index_select(0, tails);
            Tensor headScores = Scores(keys, heads, prepared, query.Offsets[0]);
            Tensor tailScores = Scores(values, tails, prepared, query.Offsets[0]);
            Tensor scores = direction switch
            {
                RecallDirection.Forward => headScores,
                RecallDirection.Reverse => tailScores,
                _ => cat([headScores, tailScores]),
            };
            if (!scores.isfinite().any().item<bool>())
            {
                return new EngineError(ErrorCode.FailedPrecondition, "relation", "no fact has a live concept at the end being read");
            }

            // β·s overflows float32 for a large β (a score of 4 at β = 1e38 is +∞, and softmax then
            // gives NaN); softmax(β·(s − max s)) is the same distribution and its largest logit is 0.
            Tensor weights = scores.sub(scores.max()).mul_(beta).softmax(0);
            Tensor y = direction switch
            {
                RecallDirection.Forward => weights.matmul(values),
                RecallDirection.Reverse => weights.matmul(keys),
                _ => weights.narrow(0, 0, FactCount).matmul(values) + weights.narrow(0, FactCount, FactCount).matmul(keys),
            };
            forwardWeight = direction switch
            {
                RecallDirection.Forward => 1f,
                RecallDirection.Reverse => 0f,
                _ => weights.narrow(0, 0, FactCount).sum().cpu().item<float>(),
            };
            recalled = y.cpu().data<float>().ToArray();
        }

        Result<SearchHits[]> nearest = search.Search(_matrix, recalled, k, filter);
        return nearest.IsOk ? new RecallOutcome(recalled, nearest.Value[0], forwardWeight) : nearest.Error!;
    }

    /// <summary>The canonical score (see <see cref="QueryBatch"/>) of each gathered row.</summary>
    private Tensor Scores(Tensor rows, Tensor index, Tensor prepared, float queryOffset) =>
        // mv (not matmul): a shape mismatch throws instead of killing the process.
        rows.mv(prepared)
            .mul_(_matrix.ScalesOnDevice.index_select(0, index))
            .add_(_matrix.OffsetsOnDevice.index_select(0, index))
            .sub_(queryOffset);
}
