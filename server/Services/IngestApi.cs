using AssocDB.Protocol.V1;
using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Mapping;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.IngestService: validate → engine → map, one batch at a time (batches read as
/// <see cref="IngestServiceDefinition"/> says).</summary>
internal sealed class IngestApi(DatabaseHost host, RequestLimits limits, AssocServerOptions options, IngestDrain drain, ReplyBudget budget)
    : IngestServiceDefinition.ServiceBase
{
    /// <summary>The most bytes <see cref="IngestAck.UnlistedRejections"/> takes: its tag and a varint.</summary>
    private const int UnlistedCountBytes = 1 + 5;

    private readonly TimeSpan _idleTimeout = options.Limits.IngestIdleTimeout;

    /// <summary>How long a stopping server still waits for an acknowledgement being sent: one to a
    /// client that reads goes out at once; only one held back by a client that stopped reading waits
    /// this long before the stream is reset.</summary>
    private static readonly TimeSpan AckGraceOnStop = TimeSpan.FromSeconds(2);

    /// <remarks>The next batch is read only after the previous one is durable and acknowledged, so a
    /// stream holds at most one batch in the engine plus what HTTP/2 flow control lets the client
    /// buffer (the stream window): a fast client is held back instead of growing server memory.</remarks>
    public override async Task Ingest(IAsyncStreamReader<IngestBatchRequest> requestStream, IServerStreamWriter<IngestAck> responseStream, ServerCallContext context)
    {
        // A session's sequences must increase within a stream. One that does not is a client's bug,
        // and taken as a resume it would be acknowledged as applied without being written.
        var lastSequences = new Dictionary<(string Collection, string Session), long>();
        using IDisposable stream = limits.IngestStream();
        drain.Track(context.GetHttpContext());
        IngestAck? ack = null;
        while (await ClientTurnAsync(requestStream, responseStream, ack, context) is { Batch: var batch } request)
        {
            using IngestBatchRequest read = request;
            var collection = host.Collection(request.Collection);
            limits.Batch(batch.Concepts.Count + batch.Facts.Count, "batch");
            if (lastSequences.TryGetValue((request.Collection, batch.Session), out long last) && batch.Sequence <= last)
            {
                throw GrpcErrors.InvalidArgument("sequence", $"is {batch.Sequence}, not above {last}, the session's previous sequence in this stream");
            }

            lastSequences[(request.Collection, batch.Session)] = batch.Sequence;
            // On the call's token only: a batch being written when shutdown begins is finished, and
            // acknowledged (see IngestDrain), as the database closes only after Kestrel has drained
            // its calls.
            var result = (await collection.IngestAsync(batch, context.CancellationToken)).Unwrap();
            ack = Acknowledgement(result, batch.Sequence);
        }
    }

    /// <summary>
    /// The batch's acknowledgement, its rejections listed while it stays within the bytes the
    /// server sends. The batch is durable by now and its resend is answered with the same
    /// rejections, so an acknowledgement past the limit failed the stream at every resend, and the
    /// ingest never moved on.
    /// </summary>
    private IngestAck Acknowledgement(Engine.Model.IngestResult result, long sequence)
    {
        IngestAck ack = result.ToProto(sequence);
        int listed = budget.Fill(ack, ack.Rejected, IngestAck.RejectedFieldNumber, result.Rejected.Select(r => r.ToProto()), UnlistedCountBytes, mayBeEmpty: true);
        ack.UnlistedRejections = result.Rejected.Count - listed;
        return ack;
    }

    public override Task<GetIngestProgressResponse> GetIngestProgress(GetIngestProgressRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.Session))
        {
            throw GrpcErrors.InvalidArgument("session", "must not be empty");
        }

        var collection = host.Collection(request.Collection);
        return Task.FromResult(new GetIngestProgressResponse { LastSequence = collection.LastIngestedSequence(request.Session).Unwrap() });
    }

    /// <summary>
    /// The stream's wait on its client: the previous batch's acknowledgement sent, then the next batch
    /// read (null once the client has closed its side). It ends the stream with UNAVAILABLE, which
    /// clients resume from, when the server begins to stop (<see cref="IngestDrain.Stopping"/>:
    /// Kestrel would otherwise wait out its shutdown timeout for a client sending slowly, then reset
    /// the connection) or when the client takes longer than <see cref="LimitOptions.IngestIdleTimeout"/>
    /// (a frozen client or a silent connection would otherwise hold its slot among
    /// <see cref="LimitOptions.MaxIngestStreams"/>): to send its next batch, that is; one that takes
    /// no acknowledgement for as long has its stream reset, as cancelling the write does (no status
    /// can reach a client that reads nothing), which the client library resumes from too.
    /// </summary>
    /// <remarks>
    /// Stopping does not cancel the acknowledgement's write at once: grpc-dotnet cancels a write by
    /// resetting the HTTP/2 stream (CANCEL), so no status would reach the client, and a stop begun
    /// while a batch was being written, the common case for a client that keeps batches in flight,
    /// ended every such stream CANCELLED, which the client library did not resume from. The write is given
    /// <see cref="AckGraceOnStop"/>; the stream then ends with its status.
    /// </remarks>
    private async Task<IngestBatchRequest?> ClientTurnAsync(
        IAsyncStreamReader<IngestBatchRequest> requestStream, IServerStreamWriter<IngestAck> responseStream, IngestAck? ack, ServerCallContext context)
    {
        using var turn = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        turn.CancelAfter(_idleTimeout);
        try
        {
            if (ack is not null)
            {
                using (drain.Stopping.Register(() => turn.CancelAfter(AckGraceOnStop)))
                {
                    await responseStream.WriteAsync(ack, turn.Token);
                }
            }

            drain.Stopping.ThrowIfCancellationRequested();
            using var read = CancellationTokenSource.CreateLinkedTokenSource(turn.Token, drain.Stopping);
            return await requestStream.MoveNext(read.Token) ? requestStream.Current : null;
        }
        catch (OperationCanceledException) when (!context.CancellationToken.IsCancellationRequested)
        {
            throw drain.Stopping.IsCancellationRequested ? GrpcErrors.IngestShuttingDown() : GrpcErrors.IngestIdle(_idleTimeout);
        }
    }
}
