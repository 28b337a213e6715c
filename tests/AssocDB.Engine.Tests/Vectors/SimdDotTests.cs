using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Vectors;

// Every CPU kernel must score a row with the same bits (the re-rank's proof compares the scan's
// scores with its own), so the scan's register-held query must sum exactly like the general loop.
public sealed class SimdDotTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public unsafe void The_register_held_query_scores_every_row_with_the_general_loops_bits(bool distance)
    {
        if (!SimdDot.HasRegisterPath)
        {
            return; // no 512-bit vectors: the scan uses the general loop, there is nothing to compare
        }

        const int D = SimdDot.RegisterLength;
        var random = new Random(5);
        // Magnitudes over many binades and mixed signs, so that any change of summation order
        // changes the rounded result for some row.
        float[] rows = Enumerable.Range(0, 2000 * D)
            .Select(_ => (float)(((random.NextDouble() * 2) - 1) * Math.Pow(2, random.Next(-20, 20))))
            .ToArray();
        float[] query = Enumerable.Range(0, D).Select(_ => (float)(((random.NextDouble() * 2) - 1) * Math.Pow(2, random.Next(-20, 20)))).ToArray();
        int orderSensitive = 0;
        fixed (float* w = rows, q = query)
        {
            var registers = new SimdDot.Query128(q);
            for (int row = 0; row < 2000; row++)
            {
                float* vector = w + (row * D);
                float general = SimdDot.Measure(vector, q, D, distance);
                Assert.Equal(BitConverter.SingleToInt32Bits(general), BitConverter.SingleToInt32Bits(SimdDot.Measure128(vector, in registers, distance)));
                float naive = 0;
                for (int i = 0; i < D; i++)
                {
                    naive += distance ? (vector[i] - q[i]) * (vector[i] - q[i]) : vector[i] * q[i];
                }

                orderSensitive += naive != general ? 1 : 0;
            }
        }

        // The data must be able to tell summation orders apart, or the equality above proves nothing.
        Assert.True(orderSensitive > 1000, $"only {orderSensitive} of 2000 rows sum differently in sequential order");
    }
}
