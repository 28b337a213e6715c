using AssocDB.Protocol.V1;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Mapping;

/// <summary>Field-by-field translation of the ingest messages; no decisions.</summary>
internal static class IngestMapping
{
    public static E.IngestBatch ToEngine(this IngestRequest request)
    {
        var concepts = new E.ConceptInput[request.Concepts.Count];
        for (int i = 0; i < concepts.Length; i++)
        {
            concepts[i] = request.Concepts[i].ToEngine();
        }

        var facts = new E.FactInput[request.Facts.Count];
        for (int i = 0; i < facts.Length; i++)
        {
            facts[i] = request.Facts[i].ToEngine();
        }

        return new E.IngestBatch(request.Session, request.Sequence, concepts, facts);
    }

    /// <summary>The acknowledgement without its rejections, which the caller lists as the reply's
    /// size allows (see <see cref="ReplyBudget"/>).</summary>
    public static IngestAck ToProto(this E.IngestResult result, long sequence) => new()
    {
        Sequence = sequence,
        AlreadyApplied = result.AlreadyApplied,
        Concepts = result.Concepts.ToProto(),
        Facts = result.Facts.ToProto(),
    };

    public static IngestRejection ToProto(this E.IngestRejection rejection) => new() { Field = rejection.Field, Message = rejection.Message };
}
