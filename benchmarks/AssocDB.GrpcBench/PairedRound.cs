namespace AssocDB.GrpcBench;

/// <summary>One paired round: the in-process batch and the gRPC load measured seconds apart, and the
/// ratio between them (see <c>SearchBench.MeasurePairedAsync</c>).</summary>
internal sealed record PairedRound(int Round, string First, double InProcessQps, double GrpcQps, double Ratio, double MeanBatch);
