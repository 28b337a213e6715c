namespace AssocDB.Engine.Learning;

/// <summary>
/// The counts behind a mined rule <c>body ⇒ head(x, y)</c>, as AMIE defines them (Galárraga et
/// al., WWW 2013): pairs are distinct <c>(x, y)</c> bindings of the head's variables, with x ≠ y (a
/// conclusion about a concept and itself is no answer of the reasoner's, so it is no evidence).
/// </summary>
/// <param name="Support">Pairs for which the body holds and the head fact is stored.</param>
/// <param name="BodySize">Pairs for which the body holds.</param>
/// <param name="PcaBodySize">Pairs for which the body holds and x has at least one stored fact of
/// the head relation (the partial-completeness assumption: a subject with some known objects is
/// assumed to have all of them, so only those pairs can count as counter-examples).</param>
/// <param name="HeadSize">Stored facts of the head relation between two different concepts.</param>
public sealed record RuleEvidence(long Support, long BodySize, long PcaBodySize, long HeadSize)
{
    /// <summary>Standard confidence: <c>Support / BodySize</c> (closed-world).</summary>
    public double Confidence => BodySize == 0 ? 0 : (double)Support / BodySize;

    /// <summary>PCA confidence: <c>Support / PcaBodySize</c>.</summary>
    public double PcaConfidence => PcaBodySize == 0 ? 0 : (double)Support / PcaBodySize;

    /// <summary>Head coverage: <c>Support / HeadSize</c>, the share of the head relation's facts the
    /// rule explains.</summary>
    public double HeadCoverage => HeadSize == 0 ? 0 : (double)Support / HeadSize;
}

/// <summary><c>r(x, y) ⇒ r(y, x)</c>. Its confidence is the share of r's pairs whose reverse is
/// also stored.</summary>
public sealed record SymmetryRule(int Relation, RuleEvidence Evidence);

/// <summary><c>Body(x, y) ⇒ Head(y, x)</c>, for two different relations (e.g. <c>mother_of(a, b) ⇒
/// child_of(b, a)</c>). The rule in the other direction is reported separately, with its own
/// evidence.</summary>
public sealed record InverseRule(int Body, int Head, RuleEvidence Evidence);

/// <summary><c>r(x, z) ∧ r(z, y) ⇒ r(x, y)</c>.</summary>
public sealed record TransitivityRule(int Relation, RuleEvidence Evidence);

/// <summary><c>First(x, z) ∧ Second(z, y) ⇒ Head(x, y)</c>, i.e. <c>First ∘ Second ⇒ Head</c>
/// (mother_of ∘ mother_of ⇒ grandmother_of). Transitivity (all three equal) is reported as a
/// <see cref="TransitivityRule"/> instead.</summary>
public sealed record CompositionRule(int First, int Second, int Head, RuleEvidence Evidence);

/// <summary>What <see cref="PropertyMiner"/> found.</summary>
/// <param name="SymmetryByRelation">Symmetry evidence for every relation id, accepted or not, so
/// callers can also see how far a relation is from symmetric.</param>
/// <param name="TransitivityByRelation">Transitivity evidence for every relation id.</param>
/// <param name="Symmetric">Relations whose symmetry passes the thresholds.</param>
/// <param name="Inverses">Accepted inverse rules.</param>
/// <param name="Transitive">Relations whose transitivity passes the thresholds.</param>
/// <param name="Compositions">Accepted length-2 composition rules.</param>
/// <param name="DistinctFacts">Facts counted after removing duplicates.</param>
/// <param name="Elapsed">Wall time of the mining run.</param>
/// <param name="UnkeptRules">Accepted inverse and composition rules left out past
/// <see cref="MiningOptions.MaxRules"/>.</param>
/// <remarks>Accepted lists are ordered by PCA confidence, then support, both descending.</remarks>
public sealed record MiningResult(
    IReadOnlyList<SymmetryRule> SymmetryByRelation,
    IReadOnlyList<TransitivityRule> TransitivityByRelation,
    IReadOnlyList<SymmetryRule> Symmetric,
    IReadOnlyList<InverseRule> Inverses,
    IReadOnlyList<TransitivityRule> Transitive,
    IReadOnlyList<CompositionRule> Compositions,
    long DistinctFacts,
    TimeSpan Elapsed,
    long UnkeptRules);

/// <summary>
/// Thresholds a mined rule must pass to be reported as accepted. The defaults follow AMIE's
/// (minimum head coverage 0.01) plus confidence floors low enough to keep partial properties
/// visible (WN18RR's <c>_also_see</c> is 64 % symmetric) and a support floor of 2, since one
/// coincidence is not a pattern. Raise <see cref="MinConfidence"/> before applying rules
/// automatically.
/// </summary>
public sealed record MiningOptions
{
    /// <summary>Minimum support (distinct pairs that confirm the rule). Default 2.</summary>
    public long MinSupport { get; init; } = 2;

    /// <summary>Minimum head coverage. Default 0.01, AMIE's default.</summary>
    public double MinHeadCoverage { get; init; } = 0.01;

    /// <summary>Minimum standard confidence. Default 0.1.</summary>
    public double MinConfidence { get; init; } = 0.1;

    /// <summary>Minimum PCA confidence. Default 0.1.</summary>
    public double MinPcaConfidence { get; init; } = 0.1;

    /// <summary>
    /// The most inverse rules, and apart from them the most composition rules, kept: the best by
    /// PCA confidence, then support. A dense graph of m relations can pass the thresholds with m²
    /// inverse and m³ composition rules (billions at <see cref="PropertyMiner.MaxRelations"/>), which
    /// no memory held; the rest are counted (<see cref="MiningResult.UnkeptRules"/>). At least 1;
    /// default 100,000, some fifty times FB15k-237's rules with no thresholds at all.
    /// </summary>
    public int MaxRules { get; init; } = 100_000;

    /// <summary>Whether a rule with this evidence passes every threshold. A rule no fact confirms
    /// never does, whatever the thresholds: with every one at 0, each relation was accepted as
    /// symmetric and transitive and each pair as inverses (millions of rules on a large schema),
    /// none of which could be applied (a rule needs a PCA confidence above 0).</summary>
    public bool Accepts(RuleEvidence evidence)
    {
        ArgumentNullException.ThrowIfNull(evidence);
        return evidence.Support > 0
            && evidence.Support >= MinSupport
            && evidence.HeadCoverage >= MinHeadCoverage
            && evidence.Confidence >= MinConfidence
            && evidence.PcaConfidence >= MinPcaConfidence;
    }
}
