using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.IngestService: validate → engine → map, one batch at a time.</summary>
internal sealed class IngestApi(DatabaseHost host, RequestLimits limits) : IngestService.IngestServiceBase
{
    /// <remarks>The next batch is read only after the previous one is durable and acknowledged, so a
    /// stream holds at most one batch in the engine plus what HTTP/2 flow control lets the client
    /// buffer (the stream window): a fast client is held back instead of growing server memory.</remarks>
    public override async Task Ingest(IAsyncStreamReader<IngestRequest> requestStream, IServerStreamWriter<IngestAck> responseStream, ServerCallContext context)
    {
        // A session's sequences must increase within a stream. One that does not is a client's bug,
        // and taken as a resume it would be acknowledged as applied without being written.
        var lastSequences = new Dictionary<(string Collection, string Session), long>();
        using IDisposable stream = limits.IngestStream();
        await foreach (IngestRequest request in requestStream.ReadAllAsync(context.CancellationToken))
        {
            var collection = host.Collection(request.Collection);
            limits.Batch(request.Concepts.Count + request.Facts.Count, "batch");
            if (lastSequences.TryGetValue((request.Collection, request.Session), out long last) && request.Sequence <= last)
            {
                throw GrpcErrors.InvalidArgument("sequence", $"is {request.Sequence}, not above {last}, the session's previous sequence in this stream");
            }

            lastSequences[(request.Collection, request.Session)] = request.Sequence;
            var result = (await collection.IngestAsync(request.ToEngine(), context.CancellationToken)).Unwrap();
            await responseStream.WriteAsync(result.ToProto(request.Sequence), context.CancellationToken);
        }
    }

    public override Task<GetIngestProgressResponse> GetIngestProgress(GetIngestProgressRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.Session))
        {
            throw GrpcErrors.InvalidArgument("session", "must not be empty");
        }

        var collection = host.Collection(request.Collection);
        return Task.FromResult(new GetIngestProgressResponse { LastSequence = collection.LastIngestedSequence(request.Session) });
    }
}
