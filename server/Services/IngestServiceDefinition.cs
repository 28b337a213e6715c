using AssocDB.Protocol.V1;
using AssocDB.Server.Mapping;
using Google.Protobuf;
using Grpc.Core;

namespace AssocDB.Server.Services;

/// <summary>
/// assocdb.v1.IngestService as the server binds it: the generated definition
/// (<see cref="IngestService"/>), except that a batch is read by <see cref="IngestRequestReader"/>
/// straight into the engine's types rather than into generated messages. Laid out as the generated
/// code is (a service base nested in a type with <c>BindService</c> and <c>Descriptor</c>), which
/// is what gRPC's binding and its reflection service look for.
/// </summary>
internal static class IngestServiceDefinition
{
    private static readonly Method<IngestBatchRequest, IngestAck> IngestMethod = new(
        MethodType.DuplexStreaming,
        IngestService.Descriptor.FullName,
        nameof(ServiceBase.Ingest),
        Marshallers.Create<IngestBatchRequest>(
            (_, _) => throw new NotSupportedException("the server only reads ingest batches"),
            context => IngestRequestReader.Read(context.PayloadAsReadOnlySequence(), RequestLimits.OfCurrentCall())),
        ProtobufMarshaller(IngestAck.Parser));

    private static readonly Method<GetIngestProgressRequest, GetIngestProgressResponse> GetIngestProgressMethod = new(
        MethodType.Unary,
        IngestService.Descriptor.FullName,
        nameof(ServiceBase.GetIngestProgress),
        ProtobufMarshaller(GetIngestProgressRequest.Parser),
        ProtobufMarshaller(GetIngestProgressResponse.Parser));

    /// <summary>The service's description, for the reflection service.</summary>
    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor => IngestService.Descriptor;

    public static void BindService(ServiceBinderBase binder, ServiceBase? service)
    {
        binder.AddMethod(IngestMethod, service is null ? null : new DuplexStreamingServerMethod<IngestBatchRequest, IngestAck>(service.Ingest));
        binder.AddMethod(GetIngestProgressMethod, service is null ? null : new UnaryServerMethod<GetIngestProgressRequest, GetIngestProgressResponse>(service.GetIngestProgress));
    }

    /// <summary>A generated message's marshaller, writing and reading as the generated one does.</summary>
    private static Marshaller<T> ProtobufMarshaller<T>(MessageParser<T> parser)
        where T : IMessage<T>, IBufferMessage => Marshallers.Create<T>(
        (message, context) =>
        {
            context.SetPayloadLength(message.CalculateSize());
            message.WriteTo(context.GetBufferWriter());
            context.Complete();
        },
        context => parser.ParseFrom(context.PayloadAsReadOnlySequence()));

    [BindServiceMethod(typeof(IngestServiceDefinition), nameof(BindService))]
    public abstract class ServiceBase
    {
        public abstract Task Ingest(IAsyncStreamReader<IngestBatchRequest> requestStream, IServerStreamWriter<IngestAck> responseStream, ServerCallContext context);

        public abstract Task<GetIngestProgressResponse> GetIngestProgress(GetIngestProgressRequest request, ServerCallContext context);
    }
}
