using System.Diagnostics;
using AssocDB.Engine.Model;
using AssocDB.Engine.Vectors;
using static TorchSharp.torch;

namespace AssocDB.Engine.Learning;

/// <summary>
/// Standard filtered link prediction (Bordes et al. 2013): for each test triple, rank the true
/// tail among all concepts for <c>(h, r, ?)</c> and the true head for <c>(?, r, t)</c>, after
/// removing every other known true answer from the candidates.
/// </summary>
/// <remarks>
/// Ties are ranked realistically: the rank is the mean of the optimistic rank (1 + candidates
/// scoring strictly higher) and the pessimistic one (candidates scoring at least as high), so a
/// model that gives every concept the same score gets the random-guess rank, not rank 1.
/// Scores are computed for a batch of queries against all n concepts at once on the device
/// (one <c>cdist</c>, or a chunked broadcast for RotatE); only the counts come back to the host.
/// </remarks>
public sealed class LinkPredictionEvaluator
{
    /// <summary>The most scores one device call holds (<c>[queries, concepts]</c>): 2²⁵, 128 MB
    /// of float32. With 256 queries a call, a million concepts took a gigabyte of scores (twice
    /// over where the model joins them from pieces), so calls take fewer queries as concepts grow.</summary>
    private const long DefaultMaxScores = 1L << 25;

    /// <summary>The most filtered-out answers gathered before they are applied to the scores: a
    /// query's known answers may be nearly every concept (a hub's), so a call's list was unbounded.</summary>
    private const int DefaultMaxFilterEntries = 1 << 20;

    private readonly Device _device;
    private readonly int _batchSize;
    private readonly long _maxScores;
    private readonly int _maxFilterEntries;

    /// <summary>Creates an evaluator computing on <paramref name="device"/>, with up to
    /// <paramref name="batchSize"/> queries scored per device call (fewer where the concepts are
    /// so many that their scores would pass 2²⁵ elements).</summary>
    public LinkPredictionEvaluator(Device device, int batchSize = 256)
        : this(device, batchSize, DefaultMaxScores, DefaultMaxFilterEntries)
    {
    }

    /// <summary>An evaluator with its memory bounds given (tests make them small).</summary>
    internal LinkPredictionEvaluator(Device device, int batchSize, long maxScores, int maxFilterEntries)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxScores, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFilterEntries, 1);
        _device = device;
        _batchSize = batchSize;
        _maxScores = maxScores;
        _maxFilterEntries = maxFilterEntries;
    }

    /// <summary>
    /// Evaluates concept vectors <paramref name="concepts"/> (<c>[n, d]</c> row-major) and relation
    /// vectors <paramref name="relations"/> (<c>[m, model.RelationDimension]</c>) on
    /// <paramref name="test"/>. Rows in <paramref name="unusedRows"/> (free rows of deleted
    /// concepts) are never ranked. Returns an error when the matrices do not match the model or a
    /// test triple names an id outside them or among the rows that are not candidates.
    /// <paramref name="progress"/> receives the share of test triples ranked (0..1) after each batch.
    /// </summary>
    public Result<LinkPredictionResult> Evaluate(
        EmbeddingModel model,
        ReadOnlySpan<float> concepts,
        ReadOnlySpan<float> relations,
        ReadOnlySpan<Triple> test,
        KnownTriples known,
        IReadOnlyCollection<int>? unusedRows = null,
        IProgress<double>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(known);
        if (concepts.Length == 0 || concepts.Length % model.Dimension != 0)
        {
            return EngineError.Invalid("concepts", $"length must be a positive multiple of d = {model.Dimension}");
        }

        if (relations.Length % model.RelationDimension != 0)
        {
            return EngineError.Invalid("relations", $"length must be a multiple of {model.RelationDimension}");
        }

        int n = concepts.Length / model.Dimension;
        int m = relations.Length / model.RelationDimension;
        var excluded = new HashSet<int>(unusedRows ?? []);
        if (excluded.Any(row => (uint)row >= (uint)n))
        {
            return EngineError.Invalid("unusedRows", $"a row outside the {n} concepts");
        }

        for (int i = 0; i < test.Length; i++)
        {
            Triple t = test[i];
            if ((uint)t.Head >= (uint)n || (uint)t.Tail >= (uint)n || (uint)t.Relation >= (uint)m || excluded.Contains(t.Head) || excluded.Contains(t.Tail))
            {
                return EngineError.Invalid($"test[{i}]", $"id outside the {n} concepts or {m} relations, or a row that is not a candidate");
            }
        }

        // The scope frees the host tensors as well as their copies on the device.
        using (NewDisposeScope())
        {
            Tensor conceptTensor = tensor(concepts.ToArray(), [n, model.Dimension], ScalarType.Float32).to(_device);
            Tensor relationTensor = tensor(relations.ToArray(), [m, model.RelationDimension], ScalarType.Float32).to(_device);
            Tensor? excludedRows = excluded.Count > 0 ? tensor(excluded.Select(row => (long)row).ToArray(), device: _device) : null;
            return Evaluate(model, conceptTensor, relationTensor, test, known, excludedRows, progress, cancellationToken);
        }
    }

    /// <summary>Evaluates tensors already on the device (the trainer's parameters, read without
    /// gradients); <paramref name="unusedRows"/> holds row ids never ranked, or is null. Ids must
    /// have been checked by the caller.</summary>
    internal LinkPredictionResult Evaluate(
        EmbeddingModel model,
        Tensor concepts,
        Tensor relations,
        ReadOnlySpan<Triple> test,
        KnownTriples known,
        Tensor? unusedRows,
        IProgress<double>? progress,
        CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var tail = new RankTally();
        var head = new RankTally();
        var perRelation = new SortedDictionary<int, RankTally>();
        int batchSize = (int)Math.Clamp(_maxScores / concepts.shape[0], 1, _batchSize);
        double[] ranks = new double[batchSize];
        using IDisposable noGrad = no_grad();
        using Tensor candidates = model.CentredForRanking(concepts);
        for (int start = 0; start < test.Length; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ReadOnlySpan<Triple> batch = test.Slice(start, Math.Min(batchSize, test.Length - start));
            foreach (bool predictTail in (ReadOnlySpan<bool>)[true, false])
            {
                RankBatch(model, candidates, relations, batch, known, unusedRows, predictTail, ranks);
                for (int i = 0; i < batch.Length; i++)
                {
                    (predictTail ? tail : head).Add(ranks[i]);
                    if (!perRelation.TryGetValue(batch[i].Relation, out RankTally? tally))
                    {
                        tally = new RankTally();
                        perRelation.Add(batch[i].Relation, tally);
                    }

                    tally.Add(ranks[i]);
                }
            }

            progress?.Report((double)(start + batch.Length) / test.Length);
        }

        return new LinkPredictionResult(
            RankTally.Merge(tail, head).ToMetrics(),
            tail.ToMetrics(),
            head.ToMetrics(),
            [.. perRelation.Select(p => new RelationRankingMetrics(p.Key, p.Value.ToMetrics()))],
            stopwatch.Elapsed);
    }

    /// <summary>Writes the filtered, tie-aware rank of each query's true answer, among
    /// <paramref name="concepts"/> as <see cref="EmbeddingModel.CentredForRanking"/> gives them, into
    /// <paramref name="ranks"/>. An answer scored NaN (a diverged model) gets the worst rank, that of
    /// the last of the query's candidates (filtered answers and unused rows are none): NaN compares
    /// false both ways, which would otherwise make it rank ½.</summary>
    private void RankBatch(
        EmbeddingModel model, Tensor concepts, Tensor relations, ReadOnlySpan<Triple> batch, KnownTriples known, Tensor? unusedRows, bool predictTail, double[] ranks)
    {
        int b = batch.Length;
        long[] given = new long[b];
        long[] relationIds = new long[b];
        long[] answers = new long[b];
        for (int i = 0; i < b; i++)
        {
            Triple t = batch[i];
            given[i] = predictTail ? t.Head : t.Tail;
            relationIds[i] = t.Relation;
            answers[i] = predictTail ? t.Tail : t.Head;
        }

        using IDisposable scope = NewDisposeScope();
        Tensor givenVectors = concepts.index_select(0, tensor(given, device: _device));
        Tensor relationVectors = relations.index_select(0, tensor(relationIds, device: _device));
        Tensor queries = predictTail ? model.ForwardBatch(givenVectors, relationVectors) : model.InverseBatch(givenVectors, relationVectors);
        Tensor scores = model.DistanceToAll(queries, concepts).neg_();
        Tensor answerScores = scores.gather(1, tensor(answers, device: _device).unsqueeze(1));
        long[] filtered = FilterKnownAnswers(scores, batch, known, predictTail, answers);

        if (unusedRows is not null)
        {
            // A deleted concept's row is zero, which often lies nearer a query than the answer.
            scores.index_fill_(1, unusedRows, TorchScalars.NegativeInfinity);
        }

        long[] better = scores.gt(answerScores).sum(1).cpu().data<long>().ToArray();
        long[] notWorse = scores.ge(answerScores).sum(1).cpu().data<long>().ToArray();
        float[] answerValues = answerScores.cpu().data<float>().ToArray();
        long candidates = concepts.shape[0] - (unusedRows?.shape[0] ?? 0);
        for (int i = 0; i < b; i++)
        {
            ranks[i] = float.IsNaN(answerValues[i]) ? candidates - filtered[i] : (better[i] + 1 + notWorse[i]) / 2.0;
        }
    }

    /// <summary>Takes every known true answer other than the one ranked out of each query's
    /// candidates (its score set to −∞), a bounded number at a time; returns how many each query lost.</summary>
    private long[] FilterKnownAnswers(Tensor scores, ReadOnlySpan<Triple> batch, KnownTriples known, bool predictTail, long[] answers)
    {
        long[] filtered = new long[batch.Length];
        var rows = new List<long>();
        var columns = new List<long>();
        void Apply()
        {
            if (rows.Count > 0)
            {
                using IDisposable scope = NewDisposeScope();
                scores.index_put_(TorchScalars.NegativeInfinity, tensor(rows.ToArray(), device: _device), tensor(columns.ToArray(), device: _device));
                rows.Clear();
                columns.Clear();
            }
        }

        for (int i = 0; i < batch.Length; i++)
        {
            Triple t = batch[i];
            foreach (int other in predictTail ? known.TailsOf(t.Head, t.Relation) : known.HeadsOf(t.Relation, t.Tail))
            {
                if (other != answers[i])
                {
                    filtered[i]++;
                    rows.Add(i);
                    columns.Add(other);
                    if (rows.Count == _maxFilterEntries)
                    {
                        Apply();
                    }
                }
            }
        }

        Apply();
        return filtered;
    }

    /// <summary>Running sums for one group of ranks.</summary>
    private sealed class RankTally
    {
        private long _count;
        private double _reciprocal;
        private double _rank;
        private long _hits1;
        private long _hits3;
        private long _hits10;

        public void Add(double rank)
        {
            _count++;
            _reciprocal += 1 / rank;
            _rank += rank;
            _hits1 += rank <= 1 ? 1 : 0;
            _hits3 += rank <= 3 ? 1 : 0;
            _hits10 += rank <= 10 ? 1 : 0;
        }

        public static RankTally Merge(RankTally a, RankTally b) => new()
        {
            _count = a._count + b._count,
            _reciprocal = a._reciprocal + b._reciprocal,
            _rank = a._rank + b._rank,
            _hits1 = a._hits1 + b._hits1,
            _hits3 = a._hits3 + b._hits3,
            _hits10 = a._hits10 + b._hits10,
        };

        public RankingMetrics ToMetrics()
        {
            double c = Math.Max(1, _count);
            return new RankingMetrics(_count, _reciprocal / c, _rank / c, _hits1 / c, _hits3 / c, _hits10 / c);
        }
    }
}
