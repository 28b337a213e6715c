using AssocDB.Engine.Vectors;
using TorchSharp;
using static TorchSharp.torch;

namespace AssocDB.Engine.Learning;

/// <summary>Which knowledge-graph embedding a model uses.</summary>
public enum EmbeddingModelKind
{
    /// <summary>TransE (Bordes et al. 2013): a relation is a translation, <c>h + r ≈ t</c>.</summary>
    TransE,

    /// <summary>RotatE (Sun et al. 2019): a relation rotates each complex coordinate,
    /// <c>h ∘ r ≈ t</c> with <c>|rᵢ| = 1</c>.</summary>
    RotatE,
}

/// <summary>The distance TransE measures <c>h + r − t</c> with.</summary>
public enum DistanceNorm
{
    /// <summary>Sum of absolute values (the choice of Sun et al. for TransE).</summary>
    L1,

    /// <summary>Euclidean length.</summary>
    L2,
}

/// <summary>
/// The geometry of a trained embedding: how a relation moves a concept (<see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float})"/>,
/// the query vector for <c>c + r</c>), how to move back (<see cref="Inverse(ReadOnlySpan{float}, ReadOnlySpan{float})"/>, for <c>c − r</c>),
/// and the score of a fact (<see cref="Score"/>, the negated distance; higher is more plausible).
/// </summary>
/// <remarks>
/// Concept vectors have <see cref="Dimension"/> floats. TransE relation vectors have d floats.
/// RotatE concept rows hold a complex vector of d/2 coordinates, real parts first (columns
/// 0..d/2−1), imaginary parts last; a RotatE relation is d/2 phases θ, the rotation
/// <c>e^{iθ}</c>. Because a rotation has modulus 1, <c>‖h∘r − t‖ = ‖h − t∘r̄‖</c>, so scoring a
/// head against <see cref="Inverse(ReadOnlySpan{float}, ReadOnlySpan{float})"/> of the tail is exact, not an approximation.
/// </remarks>
public sealed class EmbeddingModel
{
    /// <summary>The ε under RotatE's modulus √(re² + im² + ε), held for the process (see <see cref="TorchScalars"/>).</summary>
    private static readonly Scalar ModulusEpsilon = 1e-12f.ToScalar();

    /// <summary>Creates a model description; RotatE needs an even dimension.</summary>
    public EmbeddingModel(EmbeddingModelKind kind, int dimension, DistanceNorm norm = DistanceNorm.L1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        if (kind == EmbeddingModelKind.RotatE && dimension % 2 != 0)
        {
            throw new ArgumentException("RotatE needs an even dimension (real and imaginary halves)", nameof(dimension));
        }

        Kind = kind;
        Dimension = dimension;
        Norm = norm;
    }

    /// <summary>The embedding family.</summary>
    public EmbeddingModelKind Kind { get; }

    /// <summary>Concept vector dimension d.</summary>
    public int Dimension { get; }

    /// <summary>TransE's distance; RotatE always sums the moduli of the complex differences.</summary>
    public DistanceNorm Norm { get; }

    /// <summary>Floats per relation vector: d for TransE, d/2 phases for RotatE.</summary>
    public int RelationDimension => Kind == EmbeddingModelKind.RotatE ? Dimension / 2 : Dimension;

    /// <inheritdoc />
    public override string ToString() =>
        Kind == EmbeddingModelKind.TransE ? $"TransE-{Norm} d={Dimension}" : $"RotatE d={Dimension}";

    /// <summary>The query vector for "what is r of c?": <c>c + r</c> (TransE) or <c>c ∘ e^{iθ}</c> (RotatE).</summary>
    public float[] Forward(ReadOnlySpan<float> concept, ReadOnlySpan<float> relation) => Apply(concept, relation, +1);

    /// <summary>The query vector for "whose r is c?": <c>c − r</c> (TransE) or <c>c ∘ e^{−iθ}</c> (RotatE).</summary>
    public float[] Inverse(ReadOnlySpan<float> concept, ReadOnlySpan<float> relation) => Apply(concept, relation, -1);

    /// <summary>The model's distance between a query vector and a concept vector.</summary>
    public float Distance(ReadOnlySpan<float> query, ReadOnlySpan<float> concept)
    {
        CheckLength(query, Dimension, nameof(query));
        CheckLength(concept, Dimension, nameof(concept));
        double sum = 0;
        if (Kind == EmbeddingModelKind.RotatE)
        {
            int half = Dimension / 2;
            for (int i = 0; i < half; i++)
            {
                double re = query[i] - concept[i];
                double im = query[half + i] - concept[half + i];
                sum += Math.Sqrt(re * re + im * im);
            }

            return (float)sum;
        }

        for (int i = 0; i < Dimension; i++)
        {
            double diff = query[i] - concept[i];
            sum += Norm == DistanceNorm.L1 ? Math.Abs(diff) : diff * diff;
        }

        return (float)(Norm == DistanceNorm.L1 ? sum : Math.Sqrt(sum));
    }

    /// <summary>The plausibility of <c>head r tail</c>: <c>−distance(Forward(head, r), tail)</c>.</summary>
    public float Score(ReadOnlySpan<float> head, ReadOnlySpan<float> relation, ReadOnlySpan<float> tail) =>
        -Distance(Forward(head, relation), tail);

    /// <summary>Batched forward operator on tensors: concepts <c>[…, d]</c>, relations <c>[…, relation dim]</c>.</summary>
    internal Tensor ForwardBatch(Tensor concepts, Tensor relations) => Apply(concepts, relations, +1);

    /// <summary>Batched inverse operator on tensors.</summary>
    internal Tensor InverseBatch(Tensor concepts, Tensor relations) => Apply(concepts, relations, -1);

    /// <summary>Distances between broadcastable tensors <c>[…, d]</c>, reducing the last dimension.</summary>
    internal Tensor DistanceBatch(Tensor queries, Tensor concepts)
    {
        Tensor diff = queries - concepts;
        if (Kind == EmbeddingModelKind.RotatE)
        {
            Tensor[] parts = diff.chunk(2, -1);
            // The modulus is √(re² + im² + ε), not hypot or a norm over a stacked pair: hypot's
            // gradient is NaN where query and concept coincide (possible with warm-started
            // vectors), and a norm over a size-2 dimension is ~15× slower on CPU. ε = 1e-12 shifts
            // a distance by at most 1e-6 per coordinate.
            return parts[0].pow(TorchScalars.Two).add_(parts[1].pow(TorchScalars.Two), TorchScalars.One).add_(ModulusEpsilon, TorchScalars.One).sqrt_().sum(-1);
        }

        return Norm == DistanceNorm.L1 ? diff.abs().sum(-1) : diff.norm(-1);
    }

    /// <summary>
    /// The concepts to rank queries against (see <see cref="DistanceToAll"/>), once for many
    /// batches: for TransE, moved to their mean, which leaves its queries (h ± r) and distances as
    /// they are; for RotatE, whose rotation a translation would change, the concepts themselves
    /// (an alias: dispose it).
    /// </summary>
    internal Tensor CentredForRanking(Tensor concepts)
    {
        using IDisposable noGrad = no_grad();
        using IDisposable scope = NewDisposeScope();
        return (Kind == EmbeddingModelKind.TransE ? concepts - concepts.mean([0], keepdim: true) : concepts.alias()).MoveToOuterDisposeScope();
    }

    /// <summary>Distances from every query <c>[B, d]</c> to every concept <c>[n, d]</c>: <c>[B, n]</c>,
    /// without gradients (for ranking).</summary>
    /// <remarks>TransE uses <c>cdist</c> (GEMM-based for L2). RotatE has no GEMM form (a square
    /// root per coordinate), so it materialises <c>[b, n, d/2]</c> differences for chunks of b
    /// queries, at most <paramref name="maxElements"/> elements each, in place. The default is
    /// device-dependent: ~1 M elements (4 MB) on a CPU, where cache-sized chunks measured 2–3×
    /// faster than 16 M; 64 M on a GPU, where fewer, larger kernels win. Pass concepts from
    /// <see cref="CentredForRanking"/>, and queries made from them: TransE's l2 (libtorch's matrix
    /// product past 25 rows, 6–30 times faster here than its direct form) cancels when the
    /// distances are small next to the norms, and rows kept frozen near (1000, …) all tied with the
    /// query's own row. Centred, it cancels only where the distances are small next to the
    /// concepts' spread.</remarks>
    internal Tensor DistanceToAll(Tensor queries, Tensor concepts, long maxElements = 0)
    {
        long batch = queries.shape[0];
        long n = concepts.shape[0];
        if (queries.shape[1] != Dimension || concepts.shape[1] != Dimension)
        {
            throw new ArgumentException($"expected [*, {Dimension}] queries and concepts, got {queries.shape[1]} and {concepts.shape[1]}");
        }

        using IDisposable noGrad = no_grad();
        if (Kind == EmbeddingModelKind.TransE)
        {
            return cdist(queries, concepts, Norm == DistanceNorm.L1 ? 1 : 2);
        }

        if (maxElements <= 0)
        {
            maxElements = concepts.device_type == DeviceType.CUDA ? 1L << 26 : 1L << 20;
        }

        int half = Dimension / 2;
        long chunk = Math.Max(1, maxElements / Math.Max(1, n * half));
        using IDisposable scope = NewDisposeScope();
        Tensor conceptsRe = concepts.narrow(1, 0, half).contiguous().unsqueeze(0);
        Tensor conceptsIm = concepts.narrow(1, half, half).contiguous().unsqueeze(0);
        var pieces = new List<Tensor>();
        for (long start = 0; start < batch; start += chunk)
        {
            Tensor part = queries.narrow(0, start, Math.Min(chunk, batch - start));
            Tensor re = part.narrow(1, 0, half).unsqueeze(1) - conceptsRe;
            Tensor im = part.narrow(1, half, half).unsqueeze(1) - conceptsIm;
            // Same ε as DistanceBatch, so ranking and training agree on every distance.
            pieces.Add(re.mul_(re).addcmul_(im, im, TorchScalars.One).add_(ModulusEpsilon, TorchScalars.One).sqrt_().sum(-1));
        }

        return cat(pieces, 0).MoveToOuterDisposeScope();
    }

    private Tensor Apply(Tensor concepts, Tensor relations, int sign)
    {
        if (Kind == EmbeddingModelKind.TransE)
        {
            return sign > 0 ? concepts.add(relations, TorchScalars.One) : concepts - relations;
        }

        Tensor[] parts = concepts.chunk(2, -1);
        Tensor cos = relations.cos();
        Tensor sin = sign > 0 ? relations.sin() : relations.sin().neg();
        return cat([parts[0] * cos - parts[1] * sin, (parts[0] * sin).add(parts[1] * cos, TorchScalars.One)], -1);
    }

    private float[] Apply(ReadOnlySpan<float> concept, ReadOnlySpan<float> relation, int sign)
    {
        CheckLength(concept, Dimension, nameof(concept));
        CheckLength(relation, RelationDimension, nameof(relation));
        float[] result = new float[Dimension];
        if (Kind == EmbeddingModelKind.TransE)
        {
            for (int i = 0; i < Dimension; i++)
            {
                result[i] = concept[i] + sign * relation[i];
            }

            return result;
        }

        int half = Dimension / 2;
        for (int i = 0; i < half; i++)
        {
            double cos = Math.Cos(relation[i]);
            double sin = sign * Math.Sin(relation[i]);
            result[i] = (float)(concept[i] * cos - concept[half + i] * sin);
            result[half + i] = (float)(concept[i] * sin + concept[half + i] * cos);
        }

        return result;
    }

    private static void CheckLength(ReadOnlySpan<float> vector, int expected, string name)
    {
        if (vector.Length != expected)
        {
            throw new ArgumentException($"expected {expected} floats, got {vector.Length}", name);
        }
    }
}
