using AssocDB.Protocol.V1;
using Google.Protobuf.Collections;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Mapping;

/// <summary>Field-by-field translation between wire messages and engine records; no decisions.</summary>
internal static class ProtoMapping
{
    public static E.Metric ToEngine(this Metric metric) => metric switch
    {
        Metric.Unspecified or Metric.Cosine => E.Metric.Cosine,
        Metric.Dot => E.Metric.Dot,
        Metric.L2 => E.Metric.L2,
        _ => throw Errors.GrpcErrors.InvalidArgument("metric", $"unknown metric {(int)metric}"),
    };

    public static E.StoragePrecision ToEngine(this StoragePrecision precision) => precision switch
    {
        StoragePrecision.Unspecified or StoragePrecision.Float32 => E.StoragePrecision.Float32,
        StoragePrecision.Float16 => E.StoragePrecision.Float16,
        StoragePrecision.Bfloat16 => E.StoragePrecision.BFloat16,
        _ => throw Errors.GrpcErrors.InvalidArgument("precision", $"unknown storage precision {(int)precision}"),
    };

    public static E.RecallDirection ToEngine(this RecallDirection direction) => direction switch
    {
        RecallDirection.Unspecified or RecallDirection.Auto => E.RecallDirection.Auto,
        RecallDirection.Forward => E.RecallDirection.Forward,
        RecallDirection.Reverse => E.RecallDirection.Reverse,
        _ => throw Errors.GrpcErrors.InvalidArgument("direction", $"unknown recall direction {(int)direction}"),
    };

    public static E.ConceptInput ToEngine(this ConceptInput concept) =>
        new(concept.Name, concept.Vector?.Values.ToArray(), concept.Metadata.Count > 0 ? concept.Metadata : null);

    public static E.FactInput ToEngine(this FactInput fact) =>
        new(fact.Head, fact.Relation, fact.Tail, fact.HasWeight ? fact.Weight : 1f, fact.Payload.Count > 0 ? fact.Payload : null);

    public static E.FactKey ToEngine(this FactKey fact) => new(fact.Head, fact.Relation, fact.Tail);

    public static E.RelationSpec ToEngine(this DefineRelationRequest request) => new(
        request.Name,
        request.Vector?.Values.ToArray(),
        request.HasSymmetric ? request.Symmetric : null,
        request.HasTransitive ? request.Transitive : null,
        request.HasInverseOf ? request.InverseOf : null,
        request.Compositions?.Rules.Select(r => new E.Composition(r.First, r.Second)).ToList());

    public static E.SearchQuery ToEngine(this SearchQuery query) => new(
        query.InputCase == SearchQuery.InputOneofCase.Vector ? query.Vector.Values.ToArray() : null,
        query.InputCase == SearchQuery.InputOneofCase.Concept ? query.Concept : null,
        query.Plus.Count > 0 ? query.Plus : null,
        query.Minus.Count > 0 ? query.Minus : null);

    /// <summary>A collection's description. One unavailable because its manifest is unreadable has
    /// no definition (the engine gives dimension 0): its metric and precision are then unset.</summary>
    public static CollectionInfo ToProto(this E.CollectionInfo info) => new()
    {
        Name = info.Name,
        Dimension = info.Dimension,
        Metric = info.Dimension == 0 ? Metric.Unspecified : info.Metric switch
        {
            E.Metric.Cosine => Metric.Cosine,
            E.Metric.Dot => Metric.Dot,
            _ => Metric.L2,
        },
        Precision = info.Dimension == 0 ? StoragePrecision.Unspecified : info.Precision switch
        {
            E.StoragePrecision.Float32 => StoragePrecision.Float32,
            E.StoragePrecision.Float16 => StoragePrecision.Float16,
            _ => StoragePrecision.Bfloat16,
        },
        ConceptCount = info.ConceptCount,
        RelationCount = info.RelationCount,
        FactCount = info.FactCount,
        State = info.State == E.CollectionState.Available ? CollectionState.Available : CollectionState.Unavailable,
        UnavailableReason = info.UnavailableReason ?? "",
        Folder = info.Folder,
    };

    public static WriteSummary ToProto(this E.WriteSummary summary) => new()
    {
        Applied = summary.Applied,
        Unchanged = summary.Unchanged,
        CreatedConcepts = summary.CreatedConcepts,
        CreatedRelations = summary.CreatedRelations,
    };

    public static Vector ToProto(this float[] values)
    {
        var vector = new Vector();
        vector.Values.AddRange(values);
        return vector;
    }

    public static ConceptInfo ToProto(this E.ConceptInfo concept)
    {
        var info = new ConceptInfo { Id = concept.Id, Name = concept.Name, Vector = concept.Vector.ToProto(), Degree = concept.Degree };
        info.Metadata.Add(concept.Metadata);
        return info;
    }

    public static RelationInfo ToProto(this E.RelationInfo relation)
    {
        var info = new RelationInfo
        {
            Id = relation.Id,
            Name = relation.Name,
            Vector = relation.Vector?.ToProto(),
            Symmetric = relation.Symmetric,
            Transitive = relation.Transitive,
            InverseOf = relation.InverseOf ?? "",
            FactCount = relation.FactCount,
            VectorSource = relation.VectorSource.ToProto(),
            Operator = relation.Operator.ToProto(),
        };
        info.Compositions.AddRange(relation.Compositions.Select(c => new Composition { First = c.First, Second = c.Second }));
        info.Learned.AddRange(relation.Learned.Select(p => p.ToProto()));
        return info;
    }

    public static FactKey ToProto(this E.FactKey fact) => new() { Head = fact.Head, Relation = fact.Relation, Tail = fact.Tail };

    public static AnswerKind ToProto(this E.AnswerKind kind) => kind switch
    {
        E.AnswerKind.Stored => AnswerKind.Stored,
        E.AnswerKind.Derived => AnswerKind.Derived,
        E.AnswerKind.Learned => AnswerKind.Learned,
        _ => AnswerKind.Predicted,
    };

    public static Proof ToProto(this E.Proof proof)
    {
        var message = new Proof();
        message.Facts.AddRange(proof.Facts.Select(ToProto));
        message.Rules.AddRange(proof.Rules);
        return message;
    }

    public static Answer ToProto(this E.Answer answer) => new()
    {
        Concept = answer.Concept,
        Kind = answer.Kind.ToProto(),
        Proof = answer.Proof.ToProto(),
        Score = answer.Score,
    };

    public static Edge ToProto(this E.EdgeView edge)
    {
        var message = new Edge
        {
            Fact = edge.Fact.ToProto(),
            Direction = edge.Direction == E.EdgeDirection.Outgoing ? EdgeDirection.Outgoing : EdgeDirection.Incoming,
            Other = edge.Other,
            Weight = edge.Weight,
        };
        message.Payload.Add(edge.Payload);
        return message;
    }

    public static SearchHit ToProto(this E.SearchHit hit) => new() { Id = hit.Id, Concept = hit.Concept, Score = hit.Score };

    public static RelateResponse ToProto(this E.RelateResult result)
    {
        var response = new RelateResponse { Truncated = result.Truncated };
        response.Graph.AddRange(result.Graph.Select(g => new RelatedRelation
        {
            Relation = g.Relation,
            Kind = g.Kind.ToProto(),
            Proof = g.Proof.ToProto(),
            Score = g.Score,
        }));
        response.VectorReading.AddRange(result.VectorReading.Select(v => new RelationScore { Relation = v.Relation, Score = v.Score }));
        return response;
    }

    public static RecallResponse ToProto(this E.RecallResult result)
    {
        var response = new RecallResponse { Vector = result.Vector.ToProto(), ForwardWeight = result.ForwardWeight };
        response.Nearest.AddRange(result.Nearest.Select(ToProto));
        return response;
    }

    private static void Add(this MapField<string, string> map, IReadOnlyDictionary<string, string> values)
    {
        foreach ((string key, string value) in values)
        {
            map[key] = value;
        }
    }
}
