using System.Text;
using AssocDB.Protocol.V1;
using AssocDB.Server.Jobs;
using Duration = Google.Protobuf.WellKnownTypes.Duration;
using E = AssocDB.Engine.Model;
using L = AssocDB.Engine.Learning;
using Timestamp = Google.Protobuf.WellKnownTypes.Timestamp;

namespace AssocDB.Server.Mapping;

/// <summary>Field-by-field translation of the learning messages: requests to engine options,
/// jobs and engine reports to wire messages; no decisions.</summary>
internal static class LearningMapping
{
    /// <summary>The training options of a learn request; unset fields keep the engine's defaults.</summary>
    public static L.TrainingOptions ToEngine(this LearnRequest request)
    {
        var defaults = new L.TrainingOptions();
        return defaults with
        {
            Model = request.Model switch
            {
                EmbeddingModel.Unspecified or EmbeddingModel.Rotate => L.EmbeddingModelKind.RotatE,
                EmbeddingModel.Transe => L.EmbeddingModelKind.TransE,
                _ => throw Errors.GrpcErrors.InvalidArgument("model", $"unknown embedding model {(int)request.Model}"),
            },
            Norm = request.Norm switch
            {
                DistanceNorm.Unspecified or DistanceNorm.L1 => L.DistanceNorm.L1,
                DistanceNorm.L2 => L.DistanceNorm.L2,
                _ => throw Errors.GrpcErrors.InvalidArgument("norm", $"unknown distance norm {(int)request.Norm}"),
            },
            Loss = request.Loss switch
            {
                TrainingLoss.Unspecified or TrainingLoss.NegativeSampling => L.TrainingLoss.NegativeSampling,
                TrainingLoss.Margin => L.TrainingLoss.Margin,
                _ => throw Errors.GrpcErrors.InvalidArgument("loss", $"unknown training loss {(int)request.Loss}"),
            },
            Margin = request.HasMargin ? request.Margin : defaults.Margin,
            AdversarialTemperature = request.HasAdversarialTemperature ? request.AdversarialTemperature : defaults.AdversarialTemperature,
            NegativeSamples = request.HasNegativeSamples ? request.NegativeSamples : defaults.NegativeSamples,
            BatchSize = request.HasBatchSize ? request.BatchSize : defaults.BatchSize,
            LearningRate = request.HasLearningRate ? request.LearningRate : defaults.LearningRate,
            MaxEpochs = request.HasMaxEpochs ? request.MaxEpochs : defaults.MaxEpochs,
            ValidateEvery = request.HasValidateEvery ? request.ValidateEvery : defaults.ValidateEvery,
            Patience = request.HasPatience ? request.Patience : defaults.Patience,
            ValidationSampleSize = request.HasValidationSampleSize ? request.ValidationSampleSize : defaults.ValidationSampleSize,
            TimeLimit = request.TimeLimit is { } limit ? ToTimeSpan(limit, "time_limit") : null,
            Seed = request.HasSeed ? request.Seed : defaults.Seed,
        };
    }

    /// <summary>The thresholds of a mine request; unset fields keep the engine's defaults. Shares
    /// must lie in [0, 1] and the support must not be negative.</summary>
    public static L.MiningOptions ToEngine(this MineRequest request)
    {
        var defaults = new L.MiningOptions();
        return new L.MiningOptions
        {
            MinSupport = request.HasMinSupport ? NotNegative(request.MinSupport, "min_support") : defaults.MinSupport,
            MinHeadCoverage = request.HasMinHeadCoverage ? Share(request.MinHeadCoverage, "min_head_coverage") : defaults.MinHeadCoverage,
            MinConfidence = request.HasMinConfidence ? Share(request.MinConfidence, "min_confidence") : defaults.MinConfidence,
            MinPcaConfidence = request.HasMinPcaConfidence ? Share(request.MinPcaConfidence, "min_pca_confidence") : defaults.MinPcaConfidence,
        };
    }

    /// <summary>A property sent by a client; <paramref name="field"/> names it in errors.</summary>
    public static E.LearnedProperty ToEngine(this LearnedProperty property, string field)
    {
        E.PropertyKind kind = property.Kind switch
        {
            PropertyKind.Symmetric => E.PropertyKind.Symmetric,
            PropertyKind.Inverse => E.PropertyKind.Inverse,
            PropertyKind.Transitive => E.PropertyKind.Transitive,
            PropertyKind.Composition => E.PropertyKind.Composition,
            _ => throw Errors.GrpcErrors.InvalidArgument($"{field}.kind", $"must be symmetric, inverse, transitive or composition (got {(int)property.Kind})"),
        };
        RuleStatistics statistics = property.Statistics ?? throw Errors.GrpcErrors.InvalidArgument($"{field}.statistics", "is required");
        return new E.LearnedProperty(
            kind,
            property.Relation,
            NullIfEmpty(property.Inverse),
            NullIfEmpty(property.First),
            NullIfEmpty(property.Second),
            new E.RuleStatistics(statistics.Support, statistics.BodySize, statistics.Confidence, statistics.PcaConfidence, statistics.HeadCoverage));
    }

    public static LearnedProperty ToProto(this E.LearnedProperty property) => new()
    {
        Kind = property.Kind switch
        {
            E.PropertyKind.Symmetric => PropertyKind.Symmetric,
            E.PropertyKind.Inverse => PropertyKind.Inverse,
            E.PropertyKind.Transitive => PropertyKind.Transitive,
            _ => PropertyKind.Composition,
        },
        Relation = property.Relation,
        Inverse = property.Inverse ?? "",
        First = property.First ?? "",
        Second = property.Second ?? "",
        Statistics = new RuleStatistics
        {
            Support = property.Statistics.Support,
            BodySize = property.Statistics.BodySize,
            Confidence = property.Statistics.Confidence,
            PcaConfidence = property.Statistics.PcaConfidence,
            HeadCoverage = property.Statistics.HeadCoverage,
        },
        Rule = property.ToString(),
    };

    public static RelationVectorSource ToProto(this E.RelationVectorSource source) => source switch
    {
        E.RelationVectorSource.None => RelationVectorSource.None,
        E.RelationVectorSource.Given => RelationVectorSource.Given,
        E.RelationVectorSource.ClosedForm => RelationVectorSource.ClosedForm,
        _ => RelationVectorSource.Trained,
    };

    public static RelationOperator ToProto(this E.RelationOperator @operator) =>
        @operator == E.RelationOperator.Rotation ? RelationOperator.Rotation : RelationOperator.Translation;

    /// <summary>Engine errors name option fields as C# properties (<c>maxEpochs</c>); the wire names
    /// them as proto fields (<c>max_epochs</c>). Paths and snake_case names pass unchanged.</summary>
    public static E.Result<T> WithProtoFieldNames<T>(this E.Result<T> result)
    {
        if (result.IsOk || result.Error!.Field.All(c => !char.IsUpper(c)))
        {
            return result;
        }

        var field = new StringBuilder();
        foreach (char c in result.Error.Field)
        {
            field.Append(char.IsUpper(c) ? "_" + char.ToLowerInvariant(c) : c);
        }

        return result.Error with { Field = field.ToString() };
    }

    /// <summary>The job as it is now. A mining result comes without its accepted rules, which can
    /// pass the message size limit: the reply adds as many as fit (see LearningApi).</summary>
    public static Job ToProto(this LearningJob job)
    {
        JobStatus status = job.Status;
        var message = new Job
        {
            Id = job.Id,
            Kind = job.Kind,
            Collection = job.Collection,
            State = status.State,
            Progress = job.ToProgress(status),
            StartedAt = Timestamp.FromDateTimeOffset(job.StartedAt),
            FinishedAt = status.FinishedAt is { } finished ? Timestamp.FromDateTimeOffset(finished) : null,
            Error = status.Failure is { } failure ? new JobError { Code = (int)failure.Code, Field = failure.Field, Message = failure.Message } : null,
        };
        switch (status.Result)
        {
            case E.TrainingReport training:
                message.Training = training.ToProto();
                break;
            case E.MiningReport mining:
                message.Mining = mining.ToProto();
                break;
            case E.EvaluationReport evaluation:
                message.Evaluation = evaluation.ToProto();
                break;
        }

        return message;
    }

    /// <summary>The job's progress at <paramref name="status"/>.</summary>
    public static JobProgress ToProgress(this LearningJob job, JobStatus status)
    {
        var progress = new JobProgress
        {
            JobId = job.Id,
            State = status.State,
            FractionDone = status.Fraction,
            ElapsedSeconds = ((status.FinishedAt ?? DateTimeOffset.UtcNow) - job.StartedAt).TotalSeconds,
        };
        if (status.Training is { } training)
        {
            progress.Epoch = training.Epoch;
            progress.MaxEpochs = training.MaxEpochs;
            progress.Loss = training.Loss;
            progress.TriplesPerSecond = training.TriplesPerSecond;
        }

        if (status.ValidationMrr is double mrr)
        {
            progress.ValidationMrr = mrr;
        }

        return progress;
    }

    public static TrainingReport ToProto(this E.TrainingReport report)
    {
        var message = new TrainingReport
        {
            Model = Enum.Parse<L.EmbeddingModelKind>(report.Model) == L.EmbeddingModelKind.TransE ? EmbeddingModel.Transe : EmbeddingModel.Rotate,
            EpochsRun = report.EpochsRun,
            BestEpoch = report.BestEpoch,
            StopReason = Enum.Parse<L.TrainingStopReason>(report.StopReason) switch
            {
                L.TrainingStopReason.MaxEpochs => TrainingStopReason.MaxEpochs,
                L.TrainingStopReason.EarlyStopping => TrainingStopReason.EarlyStopping,
                _ => TrainingStopReason.TimeLimit,
            },
            TriplesPerSecond = report.TriplesPerSecond,
            ElapsedSeconds = report.Elapsed.TotalSeconds,
            ConceptsWritten = report.ConceptsWritten,
            RelationsWritten = report.RelationsWritten,
        };
        if (report.BestValidationMrr is double mrr)
        {
            message.BestValidationMrr = mrr;
        }

        return message;
    }

    /// <summary>The report without its accepted rules (<see cref="ToProto(LearningJob)"/> says why).</summary>
    public static MiningReport ToProto(this E.MiningReport report)
    {
        var message = new MiningReport { Facts = report.Facts, ElapsedSeconds = report.Elapsed.TotalSeconds, AcceptedCount = report.AcceptedCount };
        message.Symmetry.AddRange(report.Symmetry.Select(ToProto));
        return message;
    }

    public static EvaluationReport ToProto(this E.EvaluationReport report)
    {
        L.LinkPredictionResult result = report.Result;
        var message = new EvaluationReport
        {
            Overall = result.Overall.ToProto(),
            TailPrediction = result.TailPrediction.ToProto(),
            HeadPrediction = result.HeadPrediction.ToProto(),
            Skipped = report.Skipped,
            ElapsedSeconds = result.Elapsed.TotalSeconds,
        };
        message.PerRelation.AddRange(result.PerRelation.Select(r => new RelationRankingMetrics
        {
            Relation = report.RelationNames[r.Relation],
            Metrics = r.Metrics.ToProto(),
        }));
        return message;
    }

    private static RankingMetrics ToProto(this L.RankingMetrics metrics) => new()
    {
        Queries = metrics.Queries,
        Mrr = metrics.Mrr,
        MeanRank = metrics.MeanRank,
        HitsAt1 = metrics.HitsAt1,
        HitsAt3 = metrics.HitsAt3,
        HitsAt10 = metrics.HitsAt10,
    };

    private static TimeSpan ToTimeSpan(Duration duration, string field)
    {
        try
        {
            return duration.ToTimeSpan();
        }
        catch (InvalidOperationException)
        {
            throw Errors.GrpcErrors.InvalidArgument(field, $"is not a valid duration ({duration.Seconds} s, {duration.Nanos} ns)");
        }
    }

    private static long NotNegative(long value, string field) =>
        value >= 0 ? value : throw Errors.GrpcErrors.InvalidArgument(field, $"must not be negative (got {value})");

    private static double Share(double value, string field) =>
        value is >= 0 and <= 1 ? value : throw Errors.GrpcErrors.InvalidArgument(field, $"must be in [0, 1] (got {value})");

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
