using AssocDB.Engine;
using AssocDB.Protocol.V1;
using AssocDB.Server.Configuration;
using AssocDB.Server.Mapping;
using Grpc.Core;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;

namespace AssocDB.Server.Services;

/// <summary>A list in a method's request, counted before the request is parsed.</summary>
/// <param name="Method">The method.</param>
/// <param name="Name">The field named when the list is too long.</param>
/// <param name="Path">The list's field number, after those of the messages it lies in.</param>
/// <param name="Limit">The most items under the server's limits; null for <c>Limits:MaxBatch</c>.</param>
internal sealed record LimitedList(string Method, string Name, int[] Path, Func<LimitOptions, int>? Limit = null);

/// <summary>
/// Binds a generated service as its own <c>BindService</c> does, except that a request carrying a
/// list (facts, concepts, names, queries, test facts, properties, rules) of more items than its
/// limit (<c>Limits:MaxBatch</c> for most) is refused (RESOURCE_EXHAUSTED naming the field) before
/// it is parsed. The generated parser builds every item first, and the service checked the count
/// only then: a 16 MiB AddFacts of empty facts is 8 M messages, each with its payload map, about
/// 2 GB per call. The items are counted by a scan of the message's tags (<see cref="WireScan"/>),
/// which skips their contents.
/// </summary>
internal sealed class BatchLimitedBinder(ServiceBinderBase inner, params LimitedList[] lists) : ServiceBinderBase
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
        LimitedList[] limited = [.. lists.Where(list => list.Method == method.Name)];
        if (limited.Length == 0)
        {
            return method;
        }

        Marshaller<TRequest> generated = method.RequestMarshaller;
        Marshaller<TRequest> counted = Marshallers.Create(generated.ContextualSerializer, context =>
        {
            if (RequestLimits.OfCurrentCall() is { } limits)
            {
                foreach (LimitedList list in limited)
                {
                    limits.ListAtMost(WireScan.Occurrences(context.PayloadAsReadOnlySequence(), list.Path), list.Limit, list.Name);
                }
            }

            return generated.ContextualDeserializer(context);
        });
        return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, counted, method.ResponseMarshaller);
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
        new BatchLimitedBinder(binder, new LimitedList("AddFacts", "facts", [AddFactsRequest.FactsFieldNumber]), new LimitedList("RemoveFacts", "facts", [RemoveFactsRequest.FactsFieldNumber])),
        service);
}

/// <summary>assocdb.v1.ConceptService with its batches limited before parsing (see
/// <see cref="BatchLimitedBinder"/>).</summary>
internal static class ConceptServiceBinding
{
    public static ServiceDescriptor Descriptor => ConceptService.Descriptor;

    public static void BindService(ServiceBinderBase binder, ConceptService.ConceptServiceBase? service) => ConceptService.BindService(
        new BatchLimitedBinder(binder, new LimitedList("UpsertConcepts", "concepts", [UpsertConceptsRequest.ConceptsFieldNumber]), new LimitedList("DeleteConcepts", "names", [DeleteConceptsRequest.NamesFieldNumber])),
        service);
}

/// <summary>assocdb.v1.QueryService with its search batch and its queries' relations limited before parsing (see
/// <see cref="BatchLimitedBinder"/>).</summary>
internal static class QueryServiceBinding
{
    public static ServiceDescriptor Descriptor => QueryService.Descriptor;

    private static int RelationTermsOfABatch(LimitOptions limits) => (int)Math.Min(int.MaxValue, (long)limits.MaxBatch * Collection.MaxRelationTerms);

    public static void BindService(ServiceBinderBase binder, QueryService.QueryServiceBase? service) => QueryService.BindService(
        new BatchLimitedBinder(
            binder,
            new LimitedList("Search", "queries", [SearchRequest.QueriesFieldNumber]),
            // Each query holds at most MaxRelationTerms of them, checked once parsed; this bounds the parse.
            new LimitedList("Search", "queries.plus", [SearchRequest.QueriesFieldNumber, SearchQuery.PlusFieldNumber], RelationTermsOfABatch),
            new LimitedList("Search", "queries.minus", [SearchRequest.QueriesFieldNumber, SearchQuery.MinusFieldNumber], RelationTermsOfABatch)),
        service);
}

/// <summary>assocdb.v1.RelationService with a relation's composition rules limited before parsing
/// (see <see cref="BatchLimitedBinder"/>): the engine keeps at most 1,024 distinct rules, and the
/// count of those sent is bounded as a batch.</summary>
internal static class RelationServiceBinding
{
    public static ServiceDescriptor Descriptor => RelationService.Descriptor;

    public static void BindService(ServiceBinderBase binder, RelationService.RelationServiceBase? service) => RelationService.BindService(
        new BatchLimitedBinder(binder, new LimitedList("DefineRelation", "compositions", [DefineRelationRequest.CompositionsFieldNumber, CompositionList.RulesFieldNumber])),
        service);
}

/// <summary>assocdb.v1.LearningService with its test facts and properties limited before parsing
/// (see <see cref="BatchLimitedBinder"/>).</summary>
internal static class LearningServiceBinding
{
    public static ServiceDescriptor Descriptor => LearningService.Descriptor;

    public static void BindService(ServiceBinderBase binder, LearningService.LearningServiceBase? service) => LearningService.BindService(
        new BatchLimitedBinder(
            binder,
            new LimitedList("Evaluate", "test", [EvaluateRequest.TestFieldNumber], _ => LearningApi.MaxListedItems),
            new LimitedList(
                "ApplyLearnedProperties", "properties", [ApplyLearnedPropertiesRequest.PropertiesFieldNumber, LearnedPropertyList.PropertiesFieldNumber], _ => LearningApi.MaxListedItems)),
        service);
}
