using AssocDB.Protocol.V1;
using AssocDB.Server.Mapping;
using Grpc.Core;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;

namespace AssocDB.Server.Services;

/// <summary>
/// Binds a generated service as its own <c>BindService</c> does, except that a request carrying a
/// batch (facts, concepts, names, queries) of more than <c>Limits:MaxBatch</c> items is refused
/// (RESOURCE_EXHAUSTED naming the field) before it is parsed. The generated parser builds every
/// item first, and the service checked the count only then: a 16 MiB AddFacts of empty facts is
/// 8 M messages, each with its payload map, about 2 GB per call. The items are counted by a scan of
/// the message's top-level tags (<see cref="WireScan"/>), which skips their contents.
/// </summary>
internal sealed class BatchLimitedBinder(ServiceBinderBase inner, params (string Method, int Field, string Name)[] batches) : ServiceBinderBase
{
    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Limited(method), handler);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Limited(method), handler);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Limited(method), handler);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
        inner.AddMethod(Limited(method), handler);

    private Method<TRequest, TResponse> Limited<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class
    {
        int index = Array.FindIndex(batches, batch => batch.Method == method.Name);
        if (index < 0)
        {
            return method;
        }

        (_, int field, string name) = batches[index];
        Marshaller<TRequest> generated = method.RequestMarshaller;
        Marshaller<TRequest> limited = Marshallers.Create(generated.ContextualSerializer, context =>
        {
            RequestLimits.OfCurrentCall()?.BatchAtMost(WireScan.Occurrences(context.PayloadAsReadOnlySequence(), field), name);
            return generated.ContextualDeserializer(context);
        });
        return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, limited, method.ResponseMarshaller);
    }
}

/// <summary>assocdb.v1.FactService with its batches limited before parsing (see
/// <see cref="BatchLimitedBinder"/>). Shaped as gRPC's binding and reflection look for: a static
/// <c>Descriptor</c>, and <c>BindService</c> taking the generated base, which declares the
/// methods it binds by name.</summary>
internal static class FactServiceBinding
{
    public static ServiceDescriptor Descriptor => FactService.Descriptor;

    public static void BindService(ServiceBinderBase binder, FactService.FactServiceBase? service) => FactService.BindService(
        new BatchLimitedBinder(binder, ("AddFacts", AddFactsRequest.FactsFieldNumber, "facts"), ("RemoveFacts", RemoveFactsRequest.FactsFieldNumber, "facts")),
        service);
}

/// <summary>assocdb.v1.ConceptService with its batches limited before parsing (see
/// <see cref="BatchLimitedBinder"/>).</summary>
internal static class ConceptServiceBinding
{
    public static ServiceDescriptor Descriptor => ConceptService.Descriptor;

    public static void BindService(ServiceBinderBase binder, ConceptService.ConceptServiceBase? service) => ConceptService.BindService(
        new BatchLimitedBinder(binder, ("UpsertConcepts", UpsertConceptsRequest.ConceptsFieldNumber, "concepts"), ("DeleteConcepts", DeleteConceptsRequest.NamesFieldNumber, "names")),
        service);
}

/// <summary>assocdb.v1.QueryService with its search batch limited before parsing (see
/// <see cref="BatchLimitedBinder"/>).</summary>
internal static class QueryServiceBinding
{
    public static ServiceDescriptor Descriptor => QueryService.Descriptor;

    public static void BindService(ServiceBinderBase binder, QueryService.QueryServiceBase? service) => QueryService.BindService(
        new BatchLimitedBinder(binder, ("Search", SearchRequest.QueriesFieldNumber, "queries")),
        service);
}
