namespace AssocDB.Engine.Vectors;

/// <summary>What a <see cref="RecallMemory"/> recalled for one input.</summary>
/// <param name="Vector">The recalled vector y (a weighted mix of stored concept vectors).</param>
/// <param name="Nearest">The concepts nearest to y under the matrix's metric, best first.</param>
/// <param name="ForwardWeight">The weight α of the forward reading (1 forward, 0 reverse, the gate in auto).</param>
public sealed record RecallOutcome(float[] Vector, SearchHits Nearest, float ForwardWeight);
