namespace AssocDB.Engine.Model;

/// <summary>A relation property, as declared or learned.</summary>
public enum PropertyKind
{
    /// <summary><c>a r b ⇒ b r a</c>.</summary>
    Symmetric,

    /// <summary><c>b Inverse a ⇒ a r b</c>.</summary>
    Inverse,

    /// <summary><c>a r b, b r c ⇒ a r c</c>.</summary>
    Transitive,

    /// <summary><c>a First b, b Second c ⇒ a r c</c>.</summary>
    Composition,
}

/// <summary>How much the data supports a rule, as AMIE defines it (Galárraga et al. 2013).</summary>
/// <param name="Support">Head facts the rule predicts correctly.</param>
/// <param name="BodySize">Instantiations of the rule's body.</param>
/// <param name="Confidence">Standard confidence: support / body size.</param>
/// <param name="PcaConfidence">Confidence under the partial completeness assumption.</param>
/// <param name="HeadCoverage">Support / facts of the head relation.</param>
public sealed record RuleStatistics(long Support, long BodySize, double Confidence, double PcaConfidence, double HeadCoverage);

/// <summary>A property learned (or mined) for relation <paramref name="Relation"/>.</summary>
/// <param name="Kind">Which property.</param>
/// <param name="Relation">The relation the rule concludes (its head).</param>
/// <param name="Inverse">For <see cref="PropertyKind.Inverse"/>: the body relation read backwards.</param>
/// <param name="First">For <see cref="PropertyKind.Composition"/>: the first body relation.</param>
/// <param name="Second">For <see cref="PropertyKind.Composition"/>: the second body relation.</param>
/// <param name="Statistics">The evidence; the reasoner uses its PCA confidence as the rule's confidence.</param>
public sealed record LearnedProperty(
    PropertyKind Kind,
    string Relation,
    string? Inverse,
    string? First,
    string? Second,
    RuleStatistics Statistics)
{
    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        PropertyKind.Symmetric => $"symmetric({Relation})",
        PropertyKind.Inverse => $"{Relation} = inverse({Inverse})",
        PropertyKind.Transitive => $"transitive({Relation})",
        _ => $"{First} ∘ {Second} ⇒ {Relation}",
    };
}

/// <summary>What mining a collection found.</summary>
/// <param name="Accepted">Properties passing the thresholds, by PCA confidence then support.</param>
/// <param name="Symmetry">Symmetry evidence of every relation, accepted or not.</param>
/// <param name="Facts">Distinct facts mined.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="UnkeptRules">Properties that passed the thresholds but were left out of
/// <paramref name="Accepted"/>, past <see cref="Learning.MiningOptions.MaxRules"/>.</param>
public sealed record MiningReport(IReadOnlyList<LearnedProperty> Accepted, IReadOnlyList<LearnedProperty> Symmetry, long Facts, TimeSpan Elapsed, long UnkeptRules)
{
    /// <summary>How many properties passed the thresholds, kept or not.</summary>
    public long AcceptedCount => Accepted.Count + UnkeptRules;
}

/// <summary>How a training run went and what it wrote.</summary>
/// <param name="Model">The model trained (<c>TransE</c>, <c>RotatE</c>).</param>
/// <param name="EpochsRun">Epochs trained.</param>
/// <param name="BestEpoch">The epoch whose parameters were written.</param>
/// <param name="BestValidationMrr">Filtered validation MRR of those parameters as trained, when
/// validated (a concept only in held-out facts keeps its stored vector instead).</param>
/// <param name="StopReason">Why training ended.</param>
/// <param name="TriplesPerSecond">Mean training throughput.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="ConceptsWritten">Concept vectors replaced in the matrix.</param>
/// <param name="RelationsWritten">Relation vectors replaced.</param>
public sealed record TrainingReport(
    string Model,
    int EpochsRun,
    int BestEpoch,
    double? BestValidationMrr,
    string StopReason,
    double TriplesPerSecond,
    TimeSpan Elapsed,
    int ConceptsWritten,
    int RelationsWritten);

/// <summary>How a relation vector is applied to a concept in <c>c ± r</c> queries.</summary>
public enum RelationOperator
{
    /// <summary><c>c + r</c> (given vectors, closed-form estimates, TransE).</summary>
    Translation,

    /// <summary>Element-wise complex rotation by phases <c>r</c> (RotatE).</summary>
    Rotation,
}

/// <summary>Where a relation's vector comes from.</summary>
public enum RelationVectorSource
{
    /// <summary>The relation has no vector: no given one, no facts to estimate from, never trained.</summary>
    None,

    /// <summary>Given by a client.</summary>
    Given,

    /// <summary>The mean of <c>v(tail) − v(head)</c> over the relation's facts, kept current as facts change.</summary>
    ClosedForm,

    /// <summary>Written by an embedding training run.</summary>
    Trained,
}

/// <summary>Link-prediction quality of the current vectors on a test set.</summary>
/// <param name="Result">Overall, per direction and per relation (relation ids index <paramref name="RelationNames"/>).</param>
/// <param name="RelationNames">Relation names by id.</param>
/// <param name="Skipped">Test facts not ranked: unknown names, or a relation without a usable vector.</param>
public sealed record EvaluationReport(Learning.LinkPredictionResult Result, IReadOnlyList<string> RelationNames, int Skipped);
