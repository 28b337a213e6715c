using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The coarse stage of <see cref="ChunkedGemmKernel"/> in 8-bit integers: each worker takes a chunk
/// of W's rows, quantizes it into an L1-sized block (one scale per row), multiplies every query
/// against it (<see cref="ByteProducts"/>: with AVX-VNNI's <c>vpdpbusd</c>, 32 byte products summed
/// into 8 int32 lanes per instruction, four times the work of a float32 FMA of the same width;
/// without it, AVX-512BW's <c>vpmaddwd</c> on the rows' bytes widened to int16) and keeps each
/// query's best candidates. W is read once per batch and never stored twice: the quantized block lives
/// only while its chunk is scored.
/// </summary>
/// <remarks>
/// <para>Quantization: row <c>w ≈ s_w·w̃</c> with <c>s_w = max|w_i|/127</c>, query
/// <c>q ≈ s_q·q̃</c> with <c>s_q = max|q_i|/L</c>, L the query levels of the products in use
/// (<see cref="QueryLevels"/>). vpdpbusd multiplies unsigned by signed bytes, so its queries are
/// stored as <c>q̃ + 128</c> and the product corrected by <c>128·Σw̃</c> per row; vpmaddwd multiplies
/// signed int16, so its query codes are q̃ itself, with 4 095 levels where bytes have 127.</para>
/// <para>Candidates are ranked by an upper bound of the exact score, not by the coarse score, so
/// one row with a large quantization step (a row far longer than the rest, under dot or l2) widens
/// only its own bound. Row r's bound adds to the coarse score
/// <c>|scale|·(‖q‖₁·s_w + s_q·‖ŵ‖₁)/2</c> (each rounded coordinate is off by at most half a step),
/// with 1 % slack for the float32 arithmetic that computed the steps, plus the float32 rounding of
/// the canonical score and of the scale/offset arithmetic, doubled (the terms of the float path,
/// with ‖q‖ ≤ ‖q‖₁). What is left per query (rounding relative to qOffset) is the bound handed to
/// <see cref="ChunkedGemmKernel"/>, which turns it into a proof or a fallback.</para>
/// <para>Register blocking: 6 queries × 16 rows. With AVX-VNNI, 12 ymm accumulators, 2 row loads and
/// broadcasts of 4 query bytes: AVX-VNNI is VEX-encoded, so 16 ymm registers are all there is. With
/// AVX-512BW, 12 zmm accumulators, two row widenings per group of 4 coordinates and broadcasts of 4
/// int16 query codes.</para>
/// </remarks>
internal static unsafe class Int8CoarseScorer
{
    /// <summary>Whether this CPU has the instructions: AVX-512 (F and BW) to quantize rows at the speed
    /// the products need and to multiply where AVX-VNNI is missing, FMA for the bounds.</summary>
    public static bool IsSupported => Avx512F.IsSupported && Avx512BW.IsSupported && Fma.IsSupported;

    /// <summary>The products this CPU runs fastest: AVX-VNNI where it has it.</summary>
    internal static ByteProducts FastestProducts => AvxVnni.IsSupported ? ByteProducts.AvxVnni : ByteProducts.Avx512BW;

    /// <summary>The products this CPU can run (none without <see cref="IsSupported"/>).</summary>
    internal static ByteProducts[] SupportedProducts =>
        !IsSupported ? [] : AvxVnni.IsSupported ? [ByteProducts.AvxVnni, ByteProducts.Avx512BW] : [ByteProducts.Avx512BW];

    /// <summary>The largest |q̃| of <paramref name="products"/>' query codes at a padded dimension:
    /// 127 for bytes; for int16 codes, 4 095 (a 32nd of the bytes' rounding), or fewer where a row's
    /// int32 sum, up to 127 · |q̃| per coordinate, could overflow (from a padded d of 4 132).</summary>
    internal static int QueryLevels(ByteProducts products, int paddedDimension) =>
        products == ByteProducts.AvxVnni ? 127 : (int)Math.Min(4095, int.MaxValue / (127L * paddedDimension));

    private const int BlockRows = 16;
    private const int QueryGroup = 6;

    /// <summary>Target bytes of one quantized chunk: L1-resident while every query group passes over it.</summary>
    private const int ChunkBytes = 32 * 1024;

    /// <summary>Room for candidates beyond the m kept, at most (see <see cref="Worker"/>).</summary>
    private const int MaxCandidateSlack = 1024;

    /// <summary>Relative float32 rounding of the scale/offset arithmetic (the float path's 2⁻²¹).</summary>
    private const double RelativeRounding = 1.0 / (1 << 21);

    /// <summary>The bound's analysis holds for vectors whose largest coordinate lies in
    /// [2⁻⁶⁰, 2⁵⁰] (or is 0): below it 127/max overflows and rounding underflows, above it norms,
    /// offsets and products can overflow. A row outside is always a candidate (its bound is +∞, so
    /// the re-rank scores it exactly); a query outside is answered by the exact scan.</summary>
    private static bool InDomain(float maxAbs) => maxAbs == 0 || (maxAbs >= 1f / (1L << 60) && maxAbs <= 1L << 50);

    /// <summary>The largest |w_i| of a row: the quantization step's numerator, kept per row by
    /// <see cref="ConceptMatrix.MaxMagnitudes"/>. Needs <see cref="IsSupported"/>.</summary>
    internal static float MaxMagnitude(float* w, int d)
    {
        // The largest magnitude bit pattern: for finite floats the integer order of |x|'s bits
        // is the float order, and integer max is a 1-cycle instruction where Vector512.Max's
        // IEEE semantics cost a 12-cycle chain.
        var magnitude = Vector512.Create(int.MaxValue);
        Vector512<int> max0 = Vector512<int>.Zero, max1 = Vector512<int>.Zero;
        int i = 0;
        for (; i + 32 <= d; i += 32)
        {
            max0 = Vector512.Max(max0, Vector512.Load(w + i).AsInt32() & magnitude);
            max1 = Vector512.Max(max1, Vector512.Load(w + i + 16).AsInt32() & magnitude);
        }

        for (; i + 16 <= d; i += 16)
        {
            max0 = Vector512.Max(max0, Vector512.Load(w + i).AsInt32() & magnitude);
        }

        Vector512<int> max = Vector512.Max(max0, max1);
        Vector128<int> quarter = Vector128.Max(Vector128.Max(max.GetLower().GetLower(), max.GetLower().GetUpper()), Vector128.Max(max.GetUpper().GetLower(), max.GetUpper().GetUpper()));
        float maxAbs = BitConverter.Int32BitsToSingle(Math.Max(Math.Max(quarter.GetElement(0), quarter.GetElement(1)), Math.Max(quarter.GetElement(2), quarter.GetElement(3))));
        for (; i < d; i++)
        {
            maxAbs = Math.Max(maxAbs, Math.Abs(w[i]));
        }

        return maxAbs;
    }

    /// <summary>Moves the <paramref name="keep"/> highest of the first <paramref name="count"/>
    /// scores to the front (in no order; ties at the cut either way) and returns the lowest of
    /// them.</summary>
    /// <remarks>The cut is found by bisecting on the scores' order-preserving integer keys, each
    /// step a count with 16-lane compares, and the list is then compacted in one branch-free
    /// pass. A quickselect took 10 % of a batch of 30 queries, most of it in mispredicted
    /// partition branches; this takes at most 32 counting passes (about 25 for scores of one sign)
    /// over a list that, for k up to a few hundred, fits in L1.</remarks>
    internal static float KeepBest(float* scores, int* rows, int count, int keep)
    {
        // Keys in place (the mapping is its own inverse, so compaction maps them back).
        int* keys = (int*)scores;
        int lowest = int.MaxValue, highest = int.MinValue;
        for (int i = 0; i < count; i++)
        {
            int key = OrderKey(keys[i]);
            keys[i] = key;
            lowest = Math.Min(lowest, key);
            highest = Math.Max(highest, key);
        }

        // At least keep keys are ≥ low; fewer than keep are ≥ high.
        long low = lowest, high = (long)highest + 1;
        while (high - low > 1)
        {
            long middle = (low + high) >> 1;
            if (CountAtLeast(keys, count, (int)middle) >= keep)
            {
                low = middle;
            }
            else
            {
                high = middle;
            }
        }

        int cut = (int)low;
        int ties = keep - (cut == int.MaxValue ? 0 : CountAtLeast(keys, count, cut + 1));
        int kept = 0;
        for (int i = 0; i < count; i++)
        {
            int key = keys[i], row = rows[i];
            int equal = key == cut ? 1 : 0;
            int take = (key > cut ? 1 : 0) | (equal & (ties > 0 ? 1 : 0));
            ties -= take & equal;
            keys[kept] = OrderKey(key);
            rows[kept] = row;
            kept += take;
        }

        return BitConverter.Int32BitsToSingle(OrderKey(cut));
    }

    /// <summary>A float's bits as an int that orders like the float (negative floats' magnitude
    /// bits flipped); applied twice, the bits again.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int OrderKey(int bits) => bits ^ ((bits >> 31) & int.MaxValue);

    /// <summary>How many of the first <paramref name="count"/> keys are ≥ <paramref name="key"/>.</summary>
    private static int CountAtLeast(int* keys, int count, int key)
    {
        var threshold = Vector512.Create(key);
        int total = 0, i = 0;
        for (; i + 16 <= count; i += 16)
        {
            total += BitOperations.PopCount(Vector512.GreaterThanOrEqual(Vector512.Load(keys + i), threshold).ExtractMostSignificantBits());
        }

        for (; i < count; i++)
        {
            total += keys[i] >= key ? 1 : 0;
        }

        return total;
    }

    /// <summary>Bounds every eligible row's score for every query and keeps each query's
    /// <paramref name="m"/> highest upper bounds; returns them with what each query's bounds still
    /// leave out (float rounding relative to its qOffset), for the re-rank's proof: +∞ for a query
    /// the bounds do not cover, which the re-rank must then leave to the exact scan.</summary>
    public static (TopKCollector[] Candidates, float[] Bounds) Candidates(
        ConceptMatrix matrix, QueryBatch batch, int m, RowFilter? allowed, int parallelism) =>
        Candidates(matrix, batch, m, allowed, parallelism, FastestProducts);

    /// <summary><see cref="Candidates(ConceptMatrix, QueryBatch, int, RowFilter?, int)"/> with the
    /// products chosen, so that tests cover each instruction set the CPU has.</summary>
    internal static (TopKCollector[] Candidates, float[] Bounds) Candidates(
        ConceptMatrix matrix, QueryBatch batch, int m, RowFilter? allowed, int parallelism, ByteProducts products)
    {
        if (!IsSupported || (products == ByteProducts.AvxVnni && !AvxVnni.IsSupported))
        {
            throw new PlatformNotSupportedException($"the int8 coarse GEMM with {products} products needs a CPU with {(products == ByteProducts.AvxVnni ? "AVX-VNNI and " : "")}AVX-512 (F and BW)");
        }

        int d = matrix.Dimension;
        int paddedDimension = (d + 3) & ~3;
        int chunkRows = Math.Clamp(ChunkBytes / paddedDimension / BlockRows * BlockRows, BlockRows, 1024);
        int chunks = (matrix.RowLimit + chunkRows - 1) / chunkRows;
        using var queries = new QuantizedQueries(batch, paddedDimension, products);
        int workerCount = Math.Max(1, Math.Min(parallelism, chunks));
        var workers = new Worker?[workerCount];
        int nextChunk = -1;
        try
        {
            // Workers claim chunks until none is left, so the batch completes even if the pool runs
            // fewer of them at once than asked.
            Parallel.For(0, workerCount, new ParallelOptions { MaxDegreeOfParallelism = workerCount }, w =>
            {
                var worker = new Worker(matrix, allowed, queries, m, chunkRows, products);
                workers[w] = worker;
                worker.Run(ref nextChunk, chunks);
            });

            var candidates = new TopKCollector[batch.Count];
            for (int j = 0; j < candidates.Length; j++)
            {
                candidates[j] = new TopKCollector(m);
                foreach (Worker? worker in workers)
                {
                    worker!.AddCandidates(j, candidates[j]);
                }
            }

            float[] bounds = new float[batch.Count];
            for (int j = 0; j < bounds.Length; j++)
            {
                bounds[j] = queries.OutOfDomain[j] ? float.PositiveInfinity : (float)(2 * RelativeRounding * Math.Abs(batch.Offsets[j]));
            }

            return (candidates, bounds);
        }
        finally
        {
            foreach (Worker? worker in workers)
            {
                worker?.ReleaseBuffers();
            }
        }
    }

    /// <summary>The batch as codes for <see cref="ByteProducts"/> (biased bytes for AVX-VNNI, int16
    /// for AVX-512BW), padded to whole query groups (padding queries are all zero and never offered),
    /// and its per-query factors, in native memory so that a batch leaves no garbage and the kernel
    /// reads them without bounds checks.</summary>
    private sealed class QuantizedQueries : IDisposable
    {
        // Codes, then the three float arrays, in one block.
        private readonly NativeBlockPool.Block _memory;

        public QuantizedQueries(QueryBatch batch, int paddedDimension, ByteProducts products)
        {
            bool bytes = products == ByteProducts.AvxVnni;
            Bias = bytes ? 128 : 0;
            int levels = QueryLevels(products, paddedDimension);
            Count = batch.Count;
            PaddedCount = (batch.Count + QueryGroup - 1) / QueryGroup * QueryGroup;
            PaddedDimension = paddedDimension;
            Stride = paddedDimension * (bytes ? 1 : sizeof(short));
            long codesLength = ((long)PaddedCount * Stride + 63) & ~63L;
            _memory = NativeBlockPool.Rent(codesLength + (3L * PaddedCount * sizeof(float)));
            Codes = _memory.Pointer;
            new Span<byte>(Codes, PaddedCount * Stride).Fill((byte)Bias);
            Steps = (float*)(_memory.Pointer + codesLength);
            new Span<float>(Steps, 3 * PaddedCount).Clear();
            L1Norms = Steps + PaddedCount;
            Offsets = L1Norms + PaddedCount;
            batch.Offsets.CopyTo(new Span<float>(Offsets, PaddedCount));
            OutOfDomain = new bool[Count];
            int d = batch.Dimension;
            for (int j = 0; j < batch.Count; j++)
            {
                ReadOnlySpan<float> q = batch.Query(j);
                float maxAbs = 0, l1 = 0;
                foreach (float x in q)
                {
                    maxAbs = Math.Max(maxAbs, Math.Abs(x));
                    l1 += Math.Abs(x);
                }

                L1Norms[j] = l1;
                if (!InDomain(maxAbs) || !float.IsFinite(l1) || !float.IsFinite(batch.Offsets[j]))
                {
                    OutOfDomain[j] = true;
                    L1Norms[j] = 0;
                    Offsets[j] = 0;
                    continue;
                }

                if (maxAbs == 0)
                {
                    continue;
                }

                Steps[j] = maxAbs / levels;
                float inverse = levels / maxAbs;
                byte* target = Codes + ((long)j * Stride);
                for (int i = 0; i < d; i++)
                {
                    int code = (int)MathF.Round(q[i] * inverse);
                    if (bytes)
                    {
                        target[i] = (byte)(Bias + code);
                    }
                    else
                    {
                        ((short*)target)[i] = (short)code;
                    }
                }
            }
        }

        /// <summary>What each code adds to its q̃: 128 for bytes, so that they are unsigned.</summary>
        public int Bias { get; }

        public int Count { get; }

        public int PaddedCount { get; }

        public int PaddedDimension { get; }

        /// <summary>Bytes from one query's codes to the next.</summary>
        public int Stride { get; }

        public byte* Codes { get; }

        /// <summary>s_q per query (0 for a zero query or padding).</summary>
        public float* Steps { get; }

        /// <summary>‖q‖₁ per query.</summary>
        public float* L1Norms { get; }

        /// <summary>qOffset per query.</summary>
        public float* Offsets { get; }

        /// <summary>Queries the int8 bound does not cover (scored as zero queries, then rescanned).</summary>
        public bool[] OutOfDomain { get; }

        public void Dispose() => NativeBlockPool.Return(_memory);
    }

    /// <summary>One thread's share: its own candidate lists (merged at the end, so no locks while
    /// scoring), its quantized chunk and the chunk's per-row terms, in native memory.</summary>
    private sealed class Worker
    {
        private readonly ConceptMatrix _matrix;
        private readonly RowFilter? _allowed;
        private readonly QuantizedQueries _queries;
        private readonly int _chunkRows;
        private readonly int _groups;
        private readonly ByteProducts _products;
        private readonly sbyte* _block;

        // Per row of the chunk: bias·Σw̃ (int), s_w·scale, the offset plus its rounding, and the
        // error bound's coefficients of s_q and ‖q‖₁. One allocation, five arrays.
        private readonly int* _correction;
        private readonly float* _factor;
        private readonly float* _offset;
        private readonly float* _errorPerStep;
        private readonly float* _errorPerL1;

        // Quantizing 16 rows at a time: their rounded bytes before the transpose into the block, and
        // the inputs of their terms, 16 each, in one section.
        private readonly byte* _staging;
        private readonly float* _blockMaxima;
        private readonly float* _blockScales;
        private readonly float* _blockOffsets;
        private readonly float* _blockNorms;
        private readonly int* _blockSums;
        private readonly int* _blockAbsoluteSums;

        /// <summary>The float32 rounding of the canonical score relative to ‖w‖·‖q‖, doubled.</summary>
        private readonly float _canonicalRounding;

        // Per query: the candidates' threshold, and the filter the kernel compares bounds before the
        // qOffset with (threshold + qOffset, lowered a little so float rounding cannot drop a row
        // whose bound reaches the threshold).
        private readonly float* _thresholds;
        private readonly float* _filters;
        private readonly float* _bounds;

        // Per query: candidates appended unsorted, up to twice the m kept (m + 1024 for a large k, so
        // that a batch asking for thousands of results does not double its memory); when full, a
        // selection keeps the best m and raises the threshold to the m-th: for m up to 1024 that is
        // amortized O(1) per candidate (one selection over 2m per m appended) where a heap costs
        // log m, and no managed garbage.
        private readonly int _keep;
        private readonly int _capacity;
        private readonly float* _candidateScores;
        private readonly int* _candidateRows;
        private readonly int* _candidateCounts;

        // Everything above lives in this one block (64-byte aligned sections), returned once.
        private readonly NativeBlockPool.Block _memory;

        public Worker(ConceptMatrix matrix, RowFilter? allowed, QuantizedQueries queries, int m, int chunkRows, ByteProducts products)
        {
            _products = products;
            _matrix = matrix;
            _allowed = allowed;
            _queries = queries;
            _chunkRows = chunkRows;
            _groups = queries.PaddedDimension / 4;
            _keep = m;
            _capacity = m + Math.Min(m, MaxCandidateSlack);
            long count = queries.Count, padded = queries.PaddedCount;
            long[] sections =
            [
                (long)chunkRows * queries.PaddedDimension,          // quantized block
                5L * chunkRows * sizeof(float),                     // per-row terms
                (matrix.Dimension + 15) / 16 * 256L,                // staging of 16 rounded rows
                6L * BlockRows * sizeof(float),                     // inputs of 16 rows' terms
                ((2 * padded) + (QueryGroup * BlockRows)) * sizeof(float), // thresholds, filters, bounds
                2 * count * _capacity * sizeof(float),              // candidate scores and rows
                count * sizeof(int),                                // candidate counts
            ];
            long[] starts = new long[sections.Length];
            long total = 0;
            for (int i = 0; i < sections.Length; i++)
            {
                starts[i] = total;
                total += (sections[i] + 63) & ~63L;
            }

            _memory = NativeBlockPool.Rent(total);
            byte* memory = _memory.Pointer;
            _block = (sbyte*)(memory + starts[0]);
            _correction = (int*)(memory + starts[1]);
            _factor = (float*)(_correction + chunkRows);
            _offset = _factor + chunkRows;
            _errorPerStep = _offset + chunkRows;
            _errorPerL1 = _errorPerStep + chunkRows;
            _staging = memory + starts[2];
            _blockMaxima = (float*)(memory + starts[3]);
            _blockScales = _blockMaxima + BlockRows;
            _blockOffsets = _blockScales + BlockRows;
            _blockNorms = _blockOffsets + BlockRows;
            _blockSums = (int*)(_blockNorms + BlockRows);
            _blockAbsoluteSums = _blockSums + BlockRows;
            _thresholds = (float*)(memory + starts[4]);
            _filters = _thresholds + padded;
            _bounds = _filters + padded;
            _candidateScores = (float*)(memory + starts[5]);
            _candidateRows = (int*)(_candidateScores + (count * _capacity));
            _candidateCounts = (int*)(memory + starts[6]);
            _canonicalRounding = (float)(2 * ((matrix.Dimension * Math.Pow(2, -23)) + RelativeRounding));
            new Span<int>(_candidateCounts, queries.Count).Clear();
            for (int j = 0; j < queries.PaddedCount; j++)
            {
                // Padding queries get +∞ so that no bound ever passes their filter.
                SetThreshold(j, j < queries.Count ? float.NegativeInfinity : float.PositiveInfinity);
            }
        }

        /// <summary>Offers query <paramref name="query"/>'s candidates from the chunks this worker scored.</summary>
        public void AddCandidates(int query, TopKCollector collector)
        {
            float* scores = _candidateScores + ((long)query * _capacity);
            int* rows = _candidateRows + ((long)query * _capacity);
            for (int i = 0; i < _candidateCounts[query]; i++)
            {
                collector.Add(scores[i], rows[i]);
            }
        }

        public void ReleaseBuffers() => NativeBlockPool.Return(_memory);

        /// <summary>Claims and scores chunks until none is left. The next chunk is claimed before
        /// the current one is scored, so that its rows can be prefetched meanwhile: quantizing
        /// reads W once, and without the prefetch each chunk would wait on DRAM.</summary>
        public void Run(ref int nextChunk, int chunks)
        {
            int chunk = Interlocked.Increment(ref nextChunk);
            while (chunk < chunks)
            {
                int following = Interlocked.Increment(ref nextChunk);
                Score(chunk * _chunkRows, following < chunks ? following * _chunkRows : -1);
                chunk = following;
            }
        }

        private void SetThreshold(int query, float threshold)
        {
            _thresholds[query] = threshold;
            float shifted = threshold + _queries.Offsets[query];
            _filters[query] = float.IsFinite(shifted) ? shifted - ((Math.Abs(threshold) + Math.Abs(_queries.Offsets[query])) * (1f / (1 << 20))) : shifted;
        }

        private void Score(int start, int prefetchStart)
        {
            int rows = Math.Min(_chunkRows, _matrix.RowLimit - start);
            Quantize(start, rows);
            int paddedRows = (rows + BlockRows - 1) / BlockRows * BlockRows;
            byte* prefetch = null;
            int prefetchLines = 0;
            if (prefetchStart >= 0)
            {
                prefetch = (byte*)(_matrix.HostPointer + ((long)prefetchStart * _matrix.Dimension));
                prefetchLines = (int)((((long)Math.Min(_chunkRows, _matrix.RowLimit - prefetchStart) * _matrix.Dimension * sizeof(float)) + 63) / 64);
            }

            // Spread the next chunk's prefetches over the blocks to score, a few lines per block:
            // issued all at once they would stall on the line-fill buffers.
            int blocks = _queries.PaddedCount / QueryGroup * (paddedRows / BlockRows);
            int linesPerBlock = (prefetchLines + blocks - 1) / blocks;
            int line = 0;
            for (int group = 0; group < _queries.PaddedCount; group += QueryGroup)
            {
                byte* q = _queries.Codes + ((long)group * _queries.Stride);
                for (int r = 0; r < paddedRows; r += BlockRows)
                {
                    for (int end = Math.Min(prefetchLines, line + linesPerBlock); line < end; line++)
                    {
                        Sse.Prefetch1(prefetch + ((long)line * 64));
                    }

                    if (_products == ByteProducts.AvxVnni)
                    {
                        ScoreBlockVnni(q, group, start, r);
                    }
                    else
                    {
                        ScoreBlockWide(q, group, start, r);
                    }
                }
            }
        }

        /// <summary>Quantizes rows [start, start + rows) into the block layout: for each 16-row block
        /// and each group of 4 coordinates, 16 × 4 bytes (rows 0–7, then 8–15), the order one ymm
        /// load feeds vpdpbusd. Ineligible and padding rows are zero with an offset of −∞.</summary>
        private void Quantize(int start, int rows)
        {
            for (int i = 0; i < rows; i += BlockRows)
            {
                QuantizeBlock(start + i, i, Math.Min(BlockRows, rows - i));
            }
        }

        /// <summary>Quantizes the 16 rows from <paramref name="firstRow"/> (<paramref name="count"/>
        /// of them real, the rest padding) into block column <paramref name="blockRow"/> / 16 and
        /// writes their per-row terms.</summary>
        /// <remarks>Each row is rounded 16 coordinates at a time into a staging area laid out so that
        /// one 512-bit load takes the same 4-coordinate slice of rows {0, 4, 8, 12} (then {1, 5, 9, 13},
        /// …); an in-lane 4 × 4 transpose of four such loads then gives whole block columns, stored 64
        /// bytes at a time. Writing each row's 4-byte groups straight down its column took four
        /// extracts and four scattered stores per 16 coordinates, and quantizing W cost as much as
        /// scoring it in a batch of 32 queries. The per-row terms are computed 16 rows at a time.</remarks>
        private void QuantizeBlock(int firstRow, int blockRow, int count)
        {
            int d = _matrix.Dimension;
            ReadOnlySpan<float> rowMaxima = _matrix.MaxMagnitudes, rowScales = _matrix.Scales, rowOffsets = _matrix.Offsets, rowNorms = _matrix.Norms;
            uint eligible = 0, covered = 0;
            for (int i = 0; i < BlockRows; i++)
            {
                int row = firstRow + i;
                bool isEligible = i < count && _matrix.IsLive(row) && (_allowed is null || _allowed.Contains(row));
                float magnitude = isEligible ? rowMaxima[row] : 0;
                bool isCovered = isEligible && InDomain(magnitude);
                eligible |= (isEligible ? 1u : 0) << i;
                covered |= (isCovered ? 1u : 0) << i;
                _blockMaxima[i] = isCovered ? magnitude : 0;
                _blockScales[i] = isCovered ? rowScales[row] : 0;
                _blockOffsets[i] = isCovered ? rowOffsets[row] : 0;
                _blockNorms[i] = isCovered ? rowNorms[row] : 0;
                byte* slot = _staging + ((i & 3) * 64) + ((i >> 2) * 16);
                if (isCovered)
                {
                    RoundRow(_matrix.HostPointer + ((long)row * d), d, magnitude != 0 ? 127 / magnitude : 0, slot);
                }
                else
                {
                    ClearRow(d, slot);
                }
            }

            int* columns = (int*)_block + ((long)(blockRow / BlockRows) * _groups * BlockRows);
            TransposeStaging(columns);
            uint finite = SetRowTerms(blockRow, covered);
            uint uncovered = ~(covered & finite) & 0xFFFF;
            for (uint rest = uncovered; rest != 0; rest &= rest - 1)
            {
                int i = BitOperations.TrailingZeroCount(rest);
                for (int g = 0; g < _groups; g++)
                {
                    columns[(g * BlockRows) + i] = 0;
                }

                // Ineligible rows never pass (−∞); rows the bound does not cover always do (+∞) and
                // are scored exactly by the re-rank.
                _correction[blockRow + i] = 0;
                _factor[blockRow + i] = 0;
                _offset[blockRow + i] = (eligible & (1u << i)) != 0 ? float.PositiveInfinity : float.NegativeInfinity;
                _errorPerStep[blockRow + i] = 0;
                _errorPerL1[blockRow + i] = 0;
            }
        }

        /// <summary>The per-row terms of a block's 16 rows from the inputs <see cref="QuantizeBlock"/>
        /// gathered; returns the rows whose terms are all finite.</summary>
        private uint SetRowTerms(int blockRow, uint covered)
        {
            // Terms in float32: their own rounding (a few 2⁻²⁴ relative) is far inside the 1 % and
            // doubled slack they carry.
            Vector512<float> scale = Vector512.Load(_blockScales), offset = Vector512.Load(_blockOffsets);
            Vector512<float> factor = Vector512.Load(_blockMaxima) / Vector512.Create(127f) * scale;
            Vector512<float> scaleStep = Vector512.Abs(factor);
            Vector512<float> shiftedOffset = offset + (Vector512.Create(2 * (float)RelativeRounding) * Vector512.Abs(offset));
            Vector512<float> errorPerStep = Vector512.Create(1.01f) * scaleStep * Vector512.ConvertToSingle(Vector512.Load(_blockAbsoluteSums)) / Vector512.Create(2f);
            Vector512<float> errorPerL1 = (Vector512.Create(1.01f) * scaleStep / Vector512.Create(2f))
                + (Vector512.Create(_canonicalRounding) * Vector512.Load(_blockNorms) * Vector512.Abs(scale));
            (Vector512.Create(_queries.Bias) * Vector512.Load(_blockSums)).Store(_correction + blockRow);
            factor.Store(_factor + blockRow);
            shiftedOffset.Store(_offset + blockRow);
            errorPerStep.Store(_errorPerStep + blockRow);
            errorPerL1.Store(_errorPerL1 + blockRow);
            // x − x is 0 exactly when x is finite.
            Vector512<float> allFinite = Vector512.Equals(shiftedOffset - shiftedOffset, Vector512<float>.Zero)
                & Vector512.Equals(errorPerStep - errorPerStep, Vector512<float>.Zero)
                & Vector512.Equals(errorPerL1 - errorPerL1, Vector512<float>.Zero);
            return (uint)allFinite.ExtractMostSignificantBits() & covered;
        }

        /// <summary>Rounds one row to w̃ = round(w·<paramref name="inverse"/>) into its staging slots
        /// (16 bytes every 256, coordinates past d zero).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void RoundRow(float* w, int d, float inverse, byte* slot)
        {
            var inverseVector = Vector512.Create(inverse);
            int i = 0;
            for (; i + 16 <= d; i += 16, slot += 256)
            {
                // Rounds to nearest even, like MathF.Round in the tail, whatever the thread's MXCSR
                // says (the ½-step bound needs it); values are within ±127, so the truncating
                // narrow to bytes is exact.
                Vector512<int> rounded = Avx512F.ConvertToVector512Int32(Vector512.Load(w + i) * inverseVector, FloatRoundingMode.ToEven);
                Avx512F.ConvertToVector128SByte(rounded).Store((sbyte*)slot);
            }

            if (i < d)
            {
                Vector128<sbyte>.Zero.Store((sbyte*)slot);
                for (int j = i; j < d; j++)
                {
                    ((sbyte*)slot)[j - i] = (sbyte)(int)MathF.Round(w[j] * inverse);
                }
            }
        }

        /// <summary>Zeroes one row's staging slots.</summary>
        private static void ClearRow(int d, byte* slot)
        {
            for (int i = 0; i < d; i += 16, slot += 256)
            {
                Vector128<byte>.Zero.Store(slot);
            }
        }

        /// <summary>Moves the staged rows into block columns and sums each row's w̃ and |w̃|: for each
        /// 16-coordinate slice, four loads hold rows {0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14},
        /// {3, 7, 11, 15} (4 groups each), and a 4 × 4 transpose of each 128-bit lane gives the slice's
        /// 4 groups for rows 0–15 in order. In a column each int holds one row's 4 bytes, so
        /// multiply-adds by ones (bytes to pairs, pairs to ints) sum all 16 rows at once, where
        /// per-row horizontal sums cost a third of the rounding.</summary>
        private void TransposeStaging(int* columns)
        {
            var sum = Vector512<int>.Zero;
            var absoluteSum = Vector512<int>.Zero;
            for (int slice = 0, group = 0; group < _groups; slice++, group += 4)
            {
                int* staged = (int*)(_staging + (slice * 256));
                Vector512<int> a = Vector512.Load(staged), b = Vector512.Load(staged + 16);
                Vector512<int> c = Vector512.Load(staged + 32), e = Vector512.Load(staged + 48);
                Vector512<long> ab0 = Avx512F.UnpackLow(a, b).AsInt64(), ab1 = Avx512F.UnpackHigh(a, b).AsInt64();
                Vector512<long> ce0 = Avx512F.UnpackLow(c, e).AsInt64(), ce1 = Avx512F.UnpackHigh(c, e).AsInt64();
                Vector512<sbyte> group0 = Avx512F.UnpackLow(ab0, ce0).AsSByte(), group1 = Avx512F.UnpackHigh(ab0, ce0).AsSByte();
                Vector512<sbyte> group2 = Avx512F.UnpackLow(ab1, ce1).AsSByte(), group3 = Avx512F.UnpackHigh(ab1, ce1).AsSByte();
                int* column = columns + (group * BlockRows);
                group0.Store((sbyte*)column);
                if (group + 1 < _groups)
                {
                    group1.Store((sbyte*)(column + BlockRows));
                }

                if (group + 2 < _groups)
                {
                    group2.Store((sbyte*)(column + (2 * BlockRows)));
                }

                if (group + 3 < _groups)
                {
                    group3.Store((sbyte*)(column + (3 * BlockRows)));
                }

                // Groups past the last are zero (the staging pads rows with zeros), so they add nothing.
                sum += PairSums(PairSums(group0) + PairSums(group1) + PairSums(group2) + PairSums(group3));
                absoluteSum += PairSums(PairSums(Vector512.Abs(group0)) + PairSums(Vector512.Abs(group1)) + PairSums(Vector512.Abs(group2)) + PairSums(Vector512.Abs(group3)));
            }

            sum.Store(_blockSums);
            absoluteSum.Store(_blockAbsoluteSums);
        }

        /// <summary>Sums of adjacent byte pairs (at most 2 · 128 in magnitude, so exact).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<short> PairSums(Vector512<sbyte> bytes) => Avx512BW.MultiplyAddAdjacent(Vector512<byte>.One, bytes);

        /// <summary>Sums of adjacent short pairs, widened to ints.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> PairSums(Vector512<short> shorts) => Avx512BW.MultiplyAddAdjacent(shorts, Vector512<short>.One);

        /// <summary>6 queries × 16 rows with AVX-VNNI, then <see cref="FilterBlock"/>.</summary>
        private void ScoreBlockVnni(byte* q, int group, int start, int r)
        {
            int stride = _queries.Stride;
            sbyte* w = _block + ((long)r * _queries.PaddedDimension);
            byte* q0 = q, q1 = q + stride, q2 = q1 + stride, q3 = q2 + stride, q4 = q3 + stride, q5 = q4 + stride;
            Vector256<int> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default;
            Vector256<int> a30 = default, a31 = default, a40 = default, a41 = default, a50 = default, a51 = default;
            for (int g = 0; g < _groups; g++, w += 64)
            {
                Vector256<sbyte> w0 = Vector256.Load(w);
                Vector256<sbyte> w1 = Vector256.Load(w + 32);
                int o = g * 4;
                Vector256<byte> b = Vector256.Create(*(int*)(q0 + o)).AsByte();
                a00 = AvxVnni.MultiplyWideningAndAdd(a00, b, w0);
                a01 = AvxVnni.MultiplyWideningAndAdd(a01, b, w1);
                b = Vector256.Create(*(int*)(q1 + o)).AsByte();
                a10 = AvxVnni.MultiplyWideningAndAdd(a10, b, w0);
                a11 = AvxVnni.MultiplyWideningAndAdd(a11, b, w1);
                b = Vector256.Create(*(int*)(q2 + o)).AsByte();
                a20 = AvxVnni.MultiplyWideningAndAdd(a20, b, w0);
                a21 = AvxVnni.MultiplyWideningAndAdd(a21, b, w1);
                b = Vector256.Create(*(int*)(q3 + o)).AsByte();
                a30 = AvxVnni.MultiplyWideningAndAdd(a30, b, w0);
                a31 = AvxVnni.MultiplyWideningAndAdd(a31, b, w1);
                b = Vector256.Create(*(int*)(q4 + o)).AsByte();
                a40 = AvxVnni.MultiplyWideningAndAdd(a40, b, w0);
                a41 = AvxVnni.MultiplyWideningAndAdd(a41, b, w1);
                b = Vector256.Create(*(int*)(q5 + o)).AsByte();
                a50 = AvxVnni.MultiplyWideningAndAdd(a50, b, w0);
                a51 = AvxVnni.MultiplyWideningAndAdd(a51, b, w1);
            }

            FilterBlock(group, start, r, a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51);
        }

        /// <summary>6 queries × 16 rows with AVX-512BW, then <see cref="FilterBlock"/>: per group of 4
        /// coordinates, the 16 rows' bytes sign-extended to int16 (rows 0–7, then 8–15) and, per query,
        /// vpmaddwd by its 4 int16 codes, which sums each row's products in two int32 lanes (coordinates
        /// 0–1 and 2–3) that are added once the block is done.</summary>
        private void ScoreBlockWide(byte* q, int group, int start, int r)
        {
            int stride = _queries.Stride;
            sbyte* w = _block + ((long)r * _queries.PaddedDimension);
            byte* q0 = q, q1 = q + stride, q2 = q1 + stride, q3 = q2 + stride, q4 = q3 + stride, q5 = q4 + stride;
            Vector512<int> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default;
            Vector512<int> a30 = default, a31 = default, a40 = default, a41 = default, a50 = default, a51 = default;
            for (int g = 0; g < _groups; g++, w += 64)
            {
                Vector512<short> w0 = Avx512BW.ConvertToVector512Int16(Vector256.Load(w));
                Vector512<short> w1 = Avx512BW.ConvertToVector512Int16(Vector256.Load(w + 32));
                int o = g * 4 * sizeof(short);
                Vector512<short> b = Vector512.Create(*(long*)(q0 + o)).AsInt16();
                a00 += Avx512BW.MultiplyAddAdjacent(w0, b);
                a01 += Avx512BW.MultiplyAddAdjacent(w1, b);
                b = Vector512.Create(*(long*)(q1 + o)).AsInt16();
                a10 += Avx512BW.MultiplyAddAdjacent(w0, b);
                a11 += Avx512BW.MultiplyAddAdjacent(w1, b);
                b = Vector512.Create(*(long*)(q2 + o)).AsInt16();
                a20 += Avx512BW.MultiplyAddAdjacent(w0, b);
                a21 += Avx512BW.MultiplyAddAdjacent(w1, b);
                b = Vector512.Create(*(long*)(q3 + o)).AsInt16();
                a30 += Avx512BW.MultiplyAddAdjacent(w0, b);
                a31 += Avx512BW.MultiplyAddAdjacent(w1, b);
                b = Vector512.Create(*(long*)(q4 + o)).AsInt16();
                a40 += Avx512BW.MultiplyAddAdjacent(w0, b);
                a41 += Avx512BW.MultiplyAddAdjacent(w1, b);
                b = Vector512.Create(*(long*)(q5 + o)).AsInt16();
                a50 += Avx512BW.MultiplyAddAdjacent(w0, b);
                a51 += Avx512BW.MultiplyAddAdjacent(w1, b);
            }

            Vector512<int> c0 = RowSums(a00, a01), c1 = RowSums(a10, a11), c2 = RowSums(a20, a21);
            Vector512<int> c3 = RowSums(a30, a31), c4 = RowSums(a40, a41), c5 = RowSums(a50, a51);
            FilterBlock(
                group, start, r, c0.GetLower(), c0.GetUpper(), c1.GetLower(), c1.GetUpper(), c2.GetLower(), c2.GetUpper(),
                c3.GetLower(), c3.GetUpper(), c4.GetLower(), c4.GetUpper(), c5.GetLower(), c5.GetUpper());
        }

        /// <summary>Rows 0–15's sums from two accumulators that hold each of rows 0–7 (then 8–15) in
        /// two adjacent lanes: the even lanes of both plus the odd lanes of both.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<int> RowSums(Vector512<int> low, Vector512<int> high) =>
            Avx512F.PermuteVar16x32x2(low, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), high)
            + Avx512F.PermuteVar16x32x2(low, Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), high);

        /// <summary>Upper bounds from a block's integer products (query i's rows 0–7 in ai0, 8–15 in
        /// ai1), compared with each query's filter; only blocks with a passing bound leave the vector
        /// registers. The bound <c>s_q·(g·s_w·scale + e_step) + (e_l1·‖q‖₁ + offset)</c> takes 3 fused
        /// multiply-adds per 8 rows; qOffset is folded into the filter. Inlined into each product
        /// loop so that the accumulators stay in registers.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void FilterBlock(
            int group, int start, int r, Vector256<int> a00, Vector256<int> a01, Vector256<int> a10, Vector256<int> a11, Vector256<int> a20, Vector256<int> a21,
            Vector256<int> a30, Vector256<int> a31, Vector256<int> a40, Vector256<int> a41, Vector256<int> a50, Vector256<int> a51)
        {
            // Bounds for all six queries before any call: a value live across a call would make the
            // JIT spill the accumulators inside the product loops.
            var h0 = new RowTerms(_correction + r, _factor + r, _offset + r, _errorPerStep + r, _errorPerL1 + r);
            var h1 = new RowTerms(_correction + r + 8, _factor + r + 8, _offset + r + 8, _errorPerStep + r + 8, _errorPerL1 + r + 8);
            float* steps = _queries.Steps + group, l1 = _queries.L1Norms + group, filters = _filters + group;
            Vector256<float> u00 = h0.Bound(a00, steps[0], l1[0]), u01 = h1.Bound(a01, steps[0], l1[0]);
            Vector256<float> u10 = h0.Bound(a10, steps[1], l1[1]), u11 = h1.Bound(a11, steps[1], l1[1]);
            Vector256<float> u20 = h0.Bound(a20, steps[2], l1[2]), u21 = h1.Bound(a21, steps[2], l1[2]);
            Vector256<float> u30 = h0.Bound(a30, steps[3], l1[3]), u31 = h1.Bound(a31, steps[3], l1[3]);
            Vector256<float> u40 = h0.Bound(a40, steps[4], l1[4]), u41 = h1.Bound(a41, steps[4], l1[4]);
            Vector256<float> u50 = h0.Bound(a50, steps[5], l1[5]), u51 = h1.Bound(a51, steps[5], l1[5]);
            var t0 = Vector256.Create(filters[0]);
            var t1 = Vector256.Create(filters[1]);
            var t2 = Vector256.Create(filters[2]);
            var t3 = Vector256.Create(filters[3]);
            var t4 = Vector256.Create(filters[4]);
            var t5 = Vector256.Create(filters[5]);
            Vector256<float> passing = (Vector256.GreaterThanOrEqual(u00, t0) | Vector256.GreaterThanOrEqual(u01, t0))
                | (Vector256.GreaterThanOrEqual(u10, t1) | Vector256.GreaterThanOrEqual(u11, t1))
                | (Vector256.GreaterThanOrEqual(u20, t2) | Vector256.GreaterThanOrEqual(u21, t2))
                | (Vector256.GreaterThanOrEqual(u30, t3) | Vector256.GreaterThanOrEqual(u31, t3))
                | (Vector256.GreaterThanOrEqual(u40, t4) | Vector256.GreaterThanOrEqual(u41, t4))
                | (Vector256.GreaterThanOrEqual(u50, t5) | Vector256.GreaterThanOrEqual(u51, t5));
            if (passing == Vector256<float>.Zero)
            {
                return;
            }

            float* bounds = _bounds;
            u00.Store(bounds);
            u01.Store(bounds + 8);
            u10.Store(bounds + 16);
            u11.Store(bounds + 24);
            u20.Store(bounds + 32);
            u21.Store(bounds + 40);
            u30.Store(bounds + 48);
            u31.Store(bounds + 56);
            u40.Store(bounds + 64);
            u41.Store(bounds + 72);
            u50.Store(bounds + 80);
            u51.Store(bounds + 88);
            OfferBlock(group, start + r);
        }

        /// <summary>Offers the last block's bounds (query-major, 16 rows each, less qOffset) that
        /// reach their query's threshold to the candidates of queries [group, group + 6); the rare path.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void OfferBlock(int group, int firstRow)
        {
            float* bounds = _bounds;
            for (int i = 0; i < QueryGroup && group + i < _queries.Count; i++, bounds += BlockRows)
            {
                int query = group + i;
                float threshold = _thresholds[query];
                var shift = Vector256.Create(_queries.Offsets[query]);
                Vector256<float> low = Vector256.Load(bounds) - shift, high = Vector256.Load(bounds + 8) - shift;
                var t = Vector256.Create(threshold);
                uint passing = Vector256.GreaterThanOrEqual(low, t).ExtractMostSignificantBits()
                    | (Vector256.GreaterThanOrEqual(high, t).ExtractMostSignificantBits() << 8);
                if (passing == 0)
                {
                    continue;
                }

                low.Store(bounds);
                high.Store(bounds + 8);
                float* scores = _candidateScores + ((long)query * _capacity);
                int* rows = _candidateRows + ((long)query * _capacity);
                int count = _candidateCounts[query];
                for (; passing != 0; passing &= passing - 1)
                {
                    int lane = BitOperations.TrailingZeroCount(passing);
                    // −∞: a row no query may return (free, deleted or filtered out).
                    if (float.IsNegativeInfinity(bounds[lane]))
                    {
                        continue;
                    }

                    scores[count] = bounds[lane];
                    rows[count] = firstRow + lane;
                    if (++count == _capacity)
                    {
                        SetThreshold(query, KeepBest(scores, rows, count, _keep));
                        count = _keep;
                    }
                }

                _candidateCounts[query] = count;
            }
        }

        /// <summary>The per-row terms of 8 rows of a block.</summary>
        private readonly struct RowTerms(int* correction, float* factor, float* offset, float* errorPerStep, float* errorPerL1)
        {
            private readonly Vector256<int> _correction = Vector256.Load(correction);
            private readonly Vector256<float> _factor = Vector256.Load(factor);
            private readonly Vector256<float> _offset = Vector256.Load(offset);
            private readonly Vector256<float> _errorPerStep = Vector256.Load(errorPerStep);
            private readonly Vector256<float> _errorPerL1 = Vector256.Load(errorPerL1);

            /// <summary>Upper bounds (before qOffset) of one query's exact scores against these rows.</summary>
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Vector256<float> Bound(Vector256<int> products, float step, float l1)
            {
                Vector256<float> scaled = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(products - _correction), _factor, _errorPerStep);
                return Vector256.FusedMultiplyAdd(Vector256.Create(step), scaled, Vector256.FusedMultiplyAdd(_errorPerL1, Vector256.Create(l1), _offset));
            }
        }
    }
}
