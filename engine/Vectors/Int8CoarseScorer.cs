using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AssocDB.Engine.Vectors;

/// <summary>
/// The coarse stage of <see cref="ChunkedGemmKernel"/> in 8-bit integers: each worker takes a chunk
/// of W's rows, quantizes it into an L1-sized block (one scale per row), multiplies every query
/// against it with AVX-VNNI (<c>vpdpbusd</c>: 32 byte products summed into 8 int32 lanes per
/// instruction, four times the work of a float32 FMA of the same width) and keeps each query's
/// best coarse scores. W is read once per batch and never stored twice: the quantized block lives
/// only while its chunk is scored.
/// </summary>
/// <remarks>
/// <para>Quantization: row <c>w ≈ s_w·w̃</c> with <c>s_w = max|w_i|/127</c>, query
/// <c>q ≈ s_q·q̃</c> likewise. vpdpbusd multiplies unsigned by signed bytes, so queries are stored as
/// <c>q̃ + 128</c> and the product corrected by <c>128·Σw̃</c> per row.</para>
/// <para>Candidates are ranked by an upper bound of the exact score, not by the coarse score, so
/// one row with a large quantization step (a row far longer than the rest, under dot or l2) widens
/// only its own bound. Row r's bound adds to the coarse score
/// <c>|scale|·(‖q‖₁·s_w + s_q·‖ŵ‖₁)/2</c> (each rounded coordinate is off by at most half a step),
/// with 1 % slack for the float32 arithmetic that computed the steps, plus the float32 rounding of
/// the canonical score and of the scale/offset arithmetic, doubled (the terms of the float path,
/// with ‖q‖ ≤ ‖q‖₁). What is left per query (rounding relative to qOffset) is the bound handed to
/// <see cref="ChunkedGemmKernel"/>, which turns it into a proof or a fallback.</para>
/// <para>Register blocking: 6 queries × 16 rows (12 ymm accumulators, 2 row loads and broadcasts of 4
/// query bytes): AVX-VNNI is VEX-encoded, so 16 ymm registers are all there is.</para>
/// </remarks>
internal static unsafe class Int8CoarseScorer
{
    /// <summary>Whether this CPU has the instructions (AVX-VNNI, with AVX2).</summary>
    public static bool IsSupported => AvxVnni.IsSupported && Avx2.IsSupported;

    private const int BlockRows = 16;
    private const int QueryGroup = 6;
    private const int QueryBias = 128;

    /// <summary>Target bytes of one quantized chunk: L1-resident while every query group passes over it.</summary>
    private const int ChunkBytes = 32 * 1024;

    /// <summary>Scores every eligible row against every query and keeps each query's
    /// <paramref name="m"/> best coarse scores; returns them with each query's error bound.</summary>
    public static (TopKCollector[] Candidates, float[] Bounds) Candidates(
        ConceptMatrix matrix, QueryBatch batch, int m, RowFilter? allowed, int parallelism)
    {
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("the int8 coarse GEMM needs AVX-VNNI");
        }

        int d = matrix.Dimension;
        int paddedDimension = (d + 3) & ~3;
        int chunkRows = Math.Clamp(ChunkBytes / paddedDimension / BlockRows * BlockRows, BlockRows, 1024);
        int chunks = (matrix.RowLimit + chunkRows - 1) / chunkRows;
        using var queries = new QuantizedQueries(batch, paddedDimension);
        int workerCount = Math.Max(1, Math.Min(parallelism, chunks));
        var workers = new Worker[workerCount];
        int nextChunk = -1;
        // Workers claim chunks until none is left, so the batch completes even if the pool runs
        // fewer of them at once than asked.
        Parallel.For(0, workerCount, new ParallelOptions { MaxDegreeOfParallelism = workerCount }, w =>
        {
            var worker = new Worker(matrix, allowed, queries, m, chunkRows);
            try
            {
                int chunk;
                while ((chunk = Interlocked.Increment(ref nextChunk)) < chunks)
                {
                    worker.Score(chunk * chunkRows);
                }
            }
            finally
            {
                worker.ReleaseBuffers();
            }

            workers[w] = worker;
        });

        TopKCollector[] candidates = workers[0].Candidates;
        foreach (Worker other in workers.AsSpan(1))
        {
            for (int j = 0; j < batch.Count; j++)
            {
                candidates[j].Merge(other.Candidates[j]);
            }
        }

        return (candidates, batch.Offsets.Select(offset => (float)(2 * RelativeRounding * Math.Abs(offset))).ToArray());
    }

    /// <summary>Relative float32 rounding of the scale/offset arithmetic (the float path's 2⁻²¹).</summary>
    private const double RelativeRounding = 1.0 / (1 << 21);

    /// <summary>The batch as biased bytes, padded to whole query groups (padding queries are all
    /// zero and never offered), in native memory so that a batch leaves no garbage.</summary>
    private sealed class QuantizedQueries : IDisposable
    {
        public QuantizedQueries(QueryBatch batch, int paddedDimension)
        {
            Count = batch.Count;
            PaddedCount = (batch.Count + QueryGroup - 1) / QueryGroup * QueryGroup;
            PaddedDimension = paddedDimension;
            Steps = new float[PaddedCount];
            L1Norms = new float[PaddedCount];
            Offsets = new float[PaddedCount];
            batch.Offsets.CopyTo(Offsets, 0);
            Bytes = (byte*)NativeMemory.AlignedAlloc((nuint)(PaddedCount * paddedDimension), 64);
            new Span<byte>(Bytes, PaddedCount * paddedDimension).Fill(QueryBias);
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
                if (maxAbs == 0)
                {
                    continue;
                }

                Steps[j] = maxAbs / 127;
                float inverse = 127 / maxAbs;
                byte* target = Bytes + ((long)j * paddedDimension);
                for (int i = 0; i < d; i++)
                {
                    target[i] = (byte)(QueryBias + (int)MathF.Round(q[i] * inverse));
                }
            }
        }

        public int Count { get; }

        public int PaddedCount { get; }

        public int PaddedDimension { get; }

        public byte* Bytes { get; }

        /// <summary>s_q per query (0 for a zero query).</summary>
        public float[] Steps { get; }

        /// <summary>‖q‖₁ per query.</summary>
        public float[] L1Norms { get; }

        /// <summary>qOffset per query (0 for padding).</summary>
        public float[] Offsets { get; }

        public void Dispose() => NativeMemory.AlignedFree(Bytes);
    }

    /// <summary>One thread's share: its own candidate lists (merged at the end, so no locks while
    /// scoring), its quantized chunk and the chunk's per-row factors.</summary>
    private sealed class Worker
    {
        private readonly ConceptMatrix _matrix;
        private readonly RowFilter? _allowed;
        private readonly QuantizedQueries _queries;
        private readonly int _chunkRows;
        private readonly int _groups;
        private readonly float[] _thresholds;
        private readonly int[] _correction;
        private readonly float[] _rowFactor;
        private readonly float[] _rowOffset;
        private readonly float[] _errorPerL1;
        private readonly float[] _errorPerStep;
        private sbyte* _block;

        public Worker(ConceptMatrix matrix, RowFilter? allowed, QuantizedQueries queries, int m, int chunkRows)
        {
            _matrix = matrix;
            _allowed = allowed;
            _queries = queries;
            _chunkRows = chunkRows;
            _groups = queries.PaddedDimension / 4;
            Candidates = new TopKCollector[queries.Count];
            for (int j = 0; j < queries.Count; j++)
            {
                Candidates[j] = new TopKCollector(m);
            }

            // Padding queries get +∞ so that no score ever passes their filter.
            _thresholds = new float[queries.PaddedCount];
            _thresholds.AsSpan(0, queries.Count).Fill(float.NegativeInfinity);
            _thresholds.AsSpan(queries.Count).Fill(float.PositiveInfinity);
            _correction = new int[chunkRows];
            _rowFactor = new float[chunkRows];
            _rowOffset = new float[chunkRows];
            _errorPerL1 = new float[chunkRows];
            _errorPerStep = new float[chunkRows];
            _block = (sbyte*)NativeMemory.AlignedAlloc((nuint)(chunkRows * queries.PaddedDimension), 64);
        }

        public TopKCollector[] Candidates { get; }

        public void ReleaseBuffers()
        {
            NativeMemory.AlignedFree(_block);
            _block = null;
        }

        public void Score(int start)
        {
            int rows = Math.Min(_chunkRows, _matrix.RowLimit - start);
            Quantize(start, rows);
            int paddedRows = (rows + BlockRows - 1) / BlockRows * BlockRows;
            int stride = _queries.PaddedDimension;
            for (int group = 0; group < _queries.PaddedCount; group += QueryGroup)
            {
                byte* q = _queries.Bytes + ((long)group * stride);
                for (int r = 0; r < paddedRows; r += BlockRows)
                {
                    ScoreBlock(q, stride, group, start, r);
                }
            }
        }

        /// <summary>Quantizes rows [start, start + rows) into the block layout: for each 16-row block
        /// and each group of 4 coordinates, 16 × 4 bytes (rows 0–7, then 8–15), the order one ymm
        /// load feeds vpdpbusd. Ineligible and padding rows are zero with an offset of −∞.</summary>
        private void Quantize(int start, int rows)
        {
            int d = _matrix.Dimension;
            int paddedRows = (rows + BlockRows - 1) / BlockRows * BlockRows;
            new Span<byte>(_block, paddedRows * _queries.PaddedDimension).Clear();
            ReadOnlySpan<float> scales = _matrix.Scales;
            ReadOnlySpan<float> offsets = _matrix.Offsets;
            ReadOnlySpan<float> norms = _matrix.Norms;
            Span<sbyte> quantized = stackalloc sbyte[_queries.PaddedDimension];
            double canonicalRounding = 2 * ((d * Math.Pow(2, -23)) + RelativeRounding);
            for (int i = 0; i < paddedRows; i++)
            {
                int row = start + i;
                _correction[i] = 0;
                _rowFactor[i] = 0;
                _rowOffset[i] = float.NegativeInfinity;
                _errorPerL1[i] = 0;
                _errorPerStep[i] = 0;
                if (i >= rows || !_matrix.IsLive(row) || (_allowed is not null && !_allowed.Contains(row)))
                {
                    continue;
                }

                float* w = _matrix.HostPointer + ((long)row * d);
                (float step, int sum, int absoluteSum) = QuantizeRow(w, d, quantized);
                _correction[i] = QueryBias * sum;
                _rowFactor[i] = step * scales[row];
                double scaleStep = Math.Abs((double)step * scales[row]);
                _errorPerL1[i] = (float)((1.01 * scaleStep / 2) + (canonicalRounding * norms[row] * Math.Abs(scales[row])));
                _errorPerStep[i] = (float)(1.01 * scaleStep * absoluteSum / 2);
                _rowOffset[i] = (float)(offsets[row] + (2 * RelativeRounding * Math.Abs(offsets[row])));
                int* target = (int*)_block + ((long)(i / BlockRows) * _groups * BlockRows) + (i % BlockRows);
                fixed (sbyte* source = quantized)
                {
                    for (int g = 0; g < _groups; g++)
                    {
                        target[g * BlockRows] = ((int*)source)[g];
                    }
                }
            }
        }

        /// <summary>Rounds one row to s·w̃; returns s, Σw̃ and Σ|w̃|. Coordinates past d stay zero.</summary>
        private static (float Step, int Sum, int AbsoluteSum) QuantizeRow(float* w, int d, Span<sbyte> quantized)
        {
            // The largest |w_i| as the largest magnitude bit pattern: for finite floats the integer
            // order of |x|'s bits is the float order, and integer max is a 1-cycle instruction where
            // Vector256.Max's IEEE semantics cost a 12-cycle chain.
            var magnitude = Vector256.Create(int.MaxValue);
            Vector256<int> max0 = Vector256<int>.Zero, max1 = Vector256<int>.Zero;
            int i = 0;
            for (; i + 16 <= d; i += 16)
            {
                max0 = Vector256.Max(max0, Vector256.Load(w + i).AsInt32() & magnitude);
                max1 = Vector256.Max(max1, Vector256.Load(w + i + 8).AsInt32() & magnitude);
            }

            for (; i + 8 <= d; i += 8)
            {
                max0 = Vector256.Max(max0, Vector256.Load(w + i).AsInt32() & magnitude);
            }

            max0 = Vector256.Max(max0, max1);
            int maxBits = 0;
            for (int lane = 0; lane < Vector256<int>.Count; lane++)
            {
                maxBits = Math.Max(maxBits, max0.GetElement(lane));
            }

            float maxAbs = BitConverter.Int32BitsToSingle(maxBits);
            for (; i < d; i++)
            {
                maxAbs = Math.Max(maxAbs, Math.Abs(w[i]));
            }

            quantized.Clear();
            if (maxAbs == 0)
            {
                return (0, 0, 0);
            }

            float inverse = 127 / maxAbs;
            var inverseVector = Vector256.Create(inverse);
            var sumVector = Vector256<int>.Zero;
            var absoluteVector = Vector256<int>.Zero;
            i = 0;
            fixed (sbyte* target = quantized)
            {
                for (; i + 32 <= d; i += 32)
                {
                    // Rounds to nearest (the MXCSR default), like MathF.Round in the tail.
                    Vector256<int> a = Avx.ConvertToVector256Int32(Vector256.Load(w + i) * inverseVector);
                    Vector256<int> b = Avx.ConvertToVector256Int32(Vector256.Load(w + i + 8) * inverseVector);
                    Vector256<int> c = Avx.ConvertToVector256Int32(Vector256.Load(w + i + 16) * inverseVector);
                    Vector256<int> e = Avx.ConvertToVector256Int32(Vector256.Load(w + i + 24) * inverseVector);
                    sumVector += (a + b) + (c + e);
                    absoluteVector += (Vector256.Abs(a) + Vector256.Abs(b)) + (Vector256.Abs(c) + Vector256.Abs(e));
                    Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, e)).Store(target + i);
                }

                int sum = Vector256.Sum(sumVector), absoluteSum = Vector256.Sum(absoluteVector);
                for (; i < d; i++)
                {
                    int value = (int)MathF.Round(w[i] * inverse);
                    target[i] = (sbyte)value;
                    sum += value;
                    absoluteSum += Math.Abs(value);
                }

                return (maxAbs / 127, sum, absoluteSum);
            }
        }

        /// <summary>6 queries × 16 rows: integer products, then coarse scores compared with each
        /// query's threshold; only blocks with a passing score leave the vector registers.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void ScoreBlock(byte* q, int stride, int group, int start, int r)
        {
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

            // Scores for all four queries before any call: a value live across a call would make the
            // JIT spill the accumulators inside the loop above.
            fixed (int* correction = &_correction[r])
            fixed (float* factor = &_rowFactor[r], offset = &_rowOffset[r], perL1 = &_errorPerL1[r], perStep = &_errorPerStep[r])
            fixed (float* thresholds = &_thresholds[group], steps = &_queries.Steps[group], shifts = &_queries.Offsets[group], l1 = &_queries.L1Norms[group])
            {
                var c0 = Vector256.Load(correction);
                var c1 = Vector256.Load(correction + 8);
                var f0 = new RowFactors(Vector256.Load(factor), Vector256.Load(offset), Vector256.Load(perL1), Vector256.Load(perStep));
                var f1 = new RowFactors(Vector256.Load(factor + 8), Vector256.Load(offset + 8), Vector256.Load(perL1 + 8), Vector256.Load(perStep + 8));
                Vector256<float> s00 = Bound(a00 - c0, f0, steps[0], shifts[0], l1[0]), s01 = Bound(a01 - c1, f1, steps[0], shifts[0], l1[0]);
                Vector256<float> s10 = Bound(a10 - c0, f0, steps[1], shifts[1], l1[1]), s11 = Bound(a11 - c1, f1, steps[1], shifts[1], l1[1]);
                Vector256<float> s20 = Bound(a20 - c0, f0, steps[2], shifts[2], l1[2]), s21 = Bound(a21 - c1, f1, steps[2], shifts[2], l1[2]);
                Vector256<float> s30 = Bound(a30 - c0, f0, steps[3], shifts[3], l1[3]), s31 = Bound(a31 - c1, f1, steps[3], shifts[3], l1[3]);
                Vector256<float> s40 = Bound(a40 - c0, f0, steps[4], shifts[4], l1[4]), s41 = Bound(a41 - c1, f1, steps[4], shifts[4], l1[4]);
                Vector256<float> s50 = Bound(a50 - c0, f0, steps[5], shifts[5], l1[5]), s51 = Bound(a51 - c1, f1, steps[5], shifts[5], l1[5]);
                var t0 = Vector256.Create(thresholds[0]);
                var t1 = Vector256.Create(thresholds[1]);
                var t2 = Vector256.Create(thresholds[2]);
                var t3 = Vector256.Create(thresholds[3]);
                var t4 = Vector256.Create(thresholds[4]);
                var t5 = Vector256.Create(thresholds[5]);
                Vector256<float> passing = (Vector256.GreaterThanOrEqual(s00, t0) | Vector256.GreaterThanOrEqual(s01, t0))
                    | (Vector256.GreaterThanOrEqual(s10, t1) | Vector256.GreaterThanOrEqual(s11, t1))
                    | (Vector256.GreaterThanOrEqual(s20, t2) | Vector256.GreaterThanOrEqual(s21, t2))
                    | (Vector256.GreaterThanOrEqual(s30, t3) | Vector256.GreaterThanOrEqual(s31, t3))
                    | (Vector256.GreaterThanOrEqual(s40, t4) | Vector256.GreaterThanOrEqual(s41, t4))
                    | (Vector256.GreaterThanOrEqual(s50, t5) | Vector256.GreaterThanOrEqual(s51, t5));
                if (passing == Vector256<float>.Zero)
                {
                    return;
                }

                float* scores = stackalloc float[QueryGroup * BlockRows];
                s00.Store(scores);
                s01.Store(scores + 8);
                s10.Store(scores + 16);
                s11.Store(scores + 24);
                s20.Store(scores + 32);
                s21.Store(scores + 40);
                s30.Store(scores + 48);
                s31.Store(scores + 56);
                s40.Store(scores + 64);
                s41.Store(scores + 72);
                s50.Store(scores + 80);
                s51.Store(scores + 88);
                OfferBlock(scores, group, start + r);
            }
        }

        /// <summary>Upper bounds of one query's exact scores against 8 rows: the coarse score
        /// <c>g·(s_w·scale·s_q) + offset − qOffset</c> plus the rows' error bounds.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Bound(Vector256<int> products, RowFactors rows, float step, float shift, float l1)
        {
            Vector256<float> error = Vector256.FusedMultiplyAdd(rows.ErrorPerL1, Vector256.Create(l1), rows.ErrorPerStep * Vector256.Create(step));
            return (Vector256.ConvertToSingle(products) * (rows.Factor * Vector256.Create(step))) + ((rows.Offset - Vector256.Create(shift)) + error);
        }

        /// <summary>Per-row terms of 8 rows: <c>s_w·scale</c>, the offset (plus its rounding) and the
        /// error bound's coefficients of ‖q‖₁ and s_q.</summary>
        private readonly record struct RowFactors(Vector256<float> Factor, Vector256<float> Offset, Vector256<float> ErrorPerL1, Vector256<float> ErrorPerStep);

        /// <summary>Offers a block's scores (query-major, 16 rows each) to the candidates of the
        /// queries in <c>[group, group + 6)</c>; the rare path, taken when a score passed a threshold.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void OfferBlock(float* scores, int group, int firstRow)
        {
            for (int i = 0; i < QueryGroup; i++)
            {
                int query = group + i;
                if (query >= _queries.Count)
                {
                    return;
                }

                TopKCollector top = Candidates[query];
                float threshold = _thresholds[query];
                for (int lane = 0; lane < BlockRows; lane++)
                {
                    threshold = top.Offer(scores[(i * BlockRows) + lane], firstRow + lane, threshold);
                }

                _thresholds[query] = threshold;
            }
        }
    }
}
