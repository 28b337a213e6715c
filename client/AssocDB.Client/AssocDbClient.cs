using System.Globalization;
using System.Runtime.CompilerServices;
using AssocDB.Protocol.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace AssocDB.Client;

/// <summary>
/// An AssocDB connection: the generated service stubs (<see cref="Collections"/>, …) for full
/// control, and async methods with plain parameters and typed results for the common calls.
/// Failed calls, and calls that did not finish within <see cref="AssocDbClientOptions.Timeout"/>, throw
/// <see cref="AssocDbException"/>; a cancelled token throws <see cref="OperationCanceledException"/>.
/// Thread-safe; share one per server.
/// </summary>
public sealed class AssocDbClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly TimeSpan? _timeout;

    /// <summary>Connects (lazily, on the first call) to a server.</summary>
    public AssocDbClient(AssocDbClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _timeout = options.Timeout;
        _channel = GrpcChannel.ForAddress(options.Address, new GrpcChannelOptions
        {
            HttpHandler = options.HttpHandler ?? new SocketsHttpHandler
            {
                // As grpc-dotnet's own handler: another HTTP/2 connection once one's streams are all in use.
                EnableMultipleHttp2Connections = true,
                KeepAlivePingDelay = options.KeepAlivePingDelay,
                KeepAlivePingTimeout = options.KeepAlivePingTimeout,
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            },
            DisposeHttpClient = true,
            MaxReceiveMessageSize = options.MaxReceiveMessageBytes,
            // A cancelled token surfaces as OperationCanceledException, as everywhere in .NET (and so
            // does a passed deadline, which Call reports as an AssocDbException instead).
            ThrowOperationCanceledOnCancellation = true,
        });
        CallInvoker invoker = _channel.CreateCallInvoker();
        if (!string.IsNullOrEmpty(options.ApiKey))
        {
            string header = "Bearer " + options.ApiKey;
            invoker = invoker.Intercept(metadata =>
            {
                metadata.Add("authorization", header);
                return metadata;
            });
        }

        Collections = new CollectionService.CollectionServiceClient(invoker);
        Concepts = new ConceptService.ConceptServiceClient(invoker);
        Relations = new RelationService.RelationServiceClient(invoker);
        Facts = new FactService.FactServiceClient(invoker);
        Query = new QueryService.QueryServiceClient(invoker);
        Admin = new AdminService.AdminServiceClient(invoker);
        Learning = new LearningService.LearningServiceClient(invoker);
        Ingest = new IngestService.IngestServiceClient(invoker);
        Invoker = invoker;
    }

    /// <summary>Connects to a server by address, with an optional API key.</summary>
    public AssocDbClient(string address, string? apiKey = null)
        : this(new AssocDbClientOptions { Address = new Uri(address), ApiKey = apiKey })
    {
    }

    /// <summary>The generated collection service stub.</summary>
    public CollectionService.CollectionServiceClient Collections { get; }

    /// <summary>The generated concept service stub.</summary>
    public ConceptService.ConceptServiceClient Concepts { get; }

    /// <summary>The generated relation service stub.</summary>
    public RelationService.RelationServiceClient Relations { get; }

    /// <summary>The generated fact service stub.</summary>
    public FactService.FactServiceClient Facts { get; }

    /// <summary>The generated query service stub.</summary>
    public QueryService.QueryServiceClient Query { get; }

    /// <summary>The generated administration service stub.</summary>
    public AdminService.AdminServiceClient Admin { get; }

    /// <summary>The generated learning service stub.</summary>
    public LearningService.LearningServiceClient Learning { get; }

    /// <summary>The generated bulk-ingestion service stub; <see cref="Ingestion.BulkIngester"/> drives it.</summary>
    public IngestService.IngestServiceClient Ingest { get; }

    /// <summary>The invoker behind the stubs, API key included, for calls the stubs do not shape
    /// (<see cref="Ingestion.BulkIngester"/> sends requests it has encoded itself).</summary>
    internal CallInvoker Invoker { get; }

    /// <summary>Creates a collection.</summary>
    public async Task<CollectionInfo> CreateCollectionAsync(
        string name, int dimension, Metric metric = Metric.Cosine,
        StoragePrecision precision = StoragePrecision.Float32, CancellationToken cancellationToken = default)
    {
        var request = new CreateCollectionRequest { Name = name, Dimension = dimension, Metric = metric, Precision = precision };
        return (await Call(o => Collections.CreateCollectionAsync(request, o), cancellationToken)).Collection;
    }

    /// <summary>Lists every collection.</summary>
    public async Task<IReadOnlyList<CollectionInfo>> ListCollectionsAsync(CancellationToken cancellationToken = default) =>
        (await Call(o => Collections.ListCollectionsAsync(new ListCollectionsRequest(), o), cancellationToken)).Collections;

    /// <summary>Describes a collection.</summary>
    public async Task<CollectionInfo> DescribeCollectionAsync(string name, CancellationToken cancellationToken = default) =>
        (await Call(o => Collections.DescribeCollectionAsync(new DescribeCollectionRequest { Name = name }, o), cancellationToken)).Collection;

    /// <summary>Drops a collection; true when it existed.</summary>
    public async Task<bool> DropCollectionAsync(string name, CancellationToken cancellationToken = default) =>
        (await Call(o => Collections.DropCollectionAsync(new DropCollectionRequest { Name = name }, o), cancellationToken)).Dropped;

    /// <summary>Creates or updates concepts in one atomic batch.</summary>
    public async Task<WriteSummary> UpsertConceptsAsync(string collection, IEnumerable<ConceptInput> concepts, CancellationToken cancellationToken = default)
    {
        var request = new UpsertConceptsRequest { Collection = collection };
        request.Concepts.AddRange(concepts);
        return (await Call(o => Concepts.UpsertConceptsAsync(request, o), cancellationToken)).Summary;
    }

    /// <summary>Reads a concept.</summary>
    public async Task<ConceptInfo> GetConceptAsync(string collection, string name, CancellationToken cancellationToken = default) =>
        (await Call(o => Concepts.GetConceptAsync(new GetConceptRequest { Collection = collection, Name = name }, o), cancellationToken)).Concept;

    /// <summary>Deletes concepts (and their facts) in one atomic batch; a name that does not exist
    /// refuses it (NotFound).</summary>
    public Task<WriteSummary> DeleteConceptsAsync(string collection, IEnumerable<string> names, CancellationToken cancellationToken = default) =>
        DeleteConceptsAsync(collection, names, missingOk: false, cancellationToken);

    /// <summary>Deletes concepts (and their facts) in one atomic batch; with
    /// <paramref name="missingOk"/>, names that do not exist count as unchanged (for a retry after
    /// an unknown outcome).</summary>
    public async Task<WriteSummary> DeleteConceptsAsync(string collection, IEnumerable<string> names, bool missingOk, CancellationToken cancellationToken = default)
    {
        var request = new DeleteConceptsRequest { Collection = collection, MissingOk = missingOk };
        request.Names.AddRange(names);
        return (await Call(o => Concepts.DeleteConceptsAsync(request, o), cancellationToken)).Summary;
    }

    /// <summary>Creates or updates a relation; properties left null keep their current value.</summary>
    public async Task<RelationInfo> DefineRelationAsync(
        string collection, string name, bool? symmetric = null, bool? transitive = null, string? inverseOf = null,
        IEnumerable<(string First, string Second)>? compositions = null, IEnumerable<float>? vector = null,
        CancellationToken cancellationToken = default)
    {
        var request = new DefineRelationRequest { Collection = collection, Name = name };
        if (symmetric is bool s)
        {
            request.Symmetric = s;
        }

        if (transitive is bool t)
        {
            request.Transitive = t;
        }

        if (inverseOf is not null)
        {
            request.InverseOf = inverseOf;
        }

        if (compositions is not null)
        {
            request.Compositions = new CompositionList();
            request.Compositions.Rules.AddRange(compositions.Select(c => new Composition { First = c.First, Second = c.Second }));
        }

        if (vector is not null)
        {
            request.Vector = Vectors.Of(vector);
        }

        return (await Call(o => Relations.DefineRelationAsync(request, o), cancellationToken)).Relation;
    }

    /// <summary>Reads a relation.</summary>
    public async Task<RelationInfo> GetRelationAsync(string collection, string name, CancellationToken cancellationToken = default) =>
        (await Call(o => Relations.GetRelationAsync(new GetRelationRequest { Collection = collection, Name = name }, o), cancellationToken)).Relation;

    /// <summary>Every relation of a collection, read a page at a time (the server's default page
    /// size; a page also ends where the server's message size limit does).</summary>
    public async Task<IReadOnlyList<RelationInfo>> ListRelationsAsync(string collection, CancellationToken cancellationToken = default)
    {
        var relations = new List<RelationInfo>();
        await foreach (RelationInfo relation in EveryPage<RelationInfo>(
            async token =>
            {
                ListRelationsResponse page = await Call(o => Relations.ListRelationsAsync(new ListRelationsRequest { Collection = collection, PageToken = token }, o), cancellationToken);
                return (page.Relations, page.NextPageToken);
            },
            cancellationToken))
        {
            relations.Add(relation);
        }

        return relations;
    }

    /// <summary>Adds facts in one atomic batch.</summary>
    public async Task<WriteSummary> AddFactsAsync(string collection, IEnumerable<FactInput> facts, CancellationToken cancellationToken = default)
    {
        var request = new AddFactsRequest { Collection = collection };
        request.Facts.AddRange(facts);
        return (await Call(o => Facts.AddFactsAsync(request, o), cancellationToken)).Summary;
    }

    /// <summary>Adds one fact <c>head relation tail</c>.</summary>
    public Task<WriteSummary> AddFactAsync(string collection, string head, string relation, string tail, CancellationToken cancellationToken = default) =>
        AddFactsAsync(collection, [new FactInput { Head = head, Relation = relation, Tail = tail }], cancellationToken);

    /// <summary>Removes facts in one atomic batch.</summary>
    public async Task<WriteSummary> RemoveFactsAsync(string collection, IEnumerable<FactKey> facts, CancellationToken cancellationToken = default)
    {
        var request = new RemoveFactsRequest { Collection = collection };
        request.Facts.AddRange(facts);
        return (await Call(o => Facts.RemoveFactsAsync(request, o), cancellationToken)).Summary;
    }

    /// <summary>The answers to <c>concept relation ?</c>: stored and derived, each with its proof
    /// (<see cref="RelatedResponse.Truncated"/> when there may be more).</summary>
    public async Task<RelatedResponse> RelatedAsync(
        string collection, string concept, string relation, int? maxDepth = null, int? limit = null,
        CancellationToken cancellationToken = default)
    {
        var request = new RelatedRequest { Collection = collection, Concept = concept, Relation = relation };
        if (maxDepth is int depth)
        {
            request.MaxDepth = depth;
        }

        if (limit is int l)
        {
            request.Limit = l;
        }

        return await Call(o => Query.RelatedAsync(request, o), cancellationToken);
    }

    /// <summary>One page of the stored edges touching a concept, both directions: from the first
    /// edge, or from <paramref name="pageToken"/> (a reply's <c>NextPageToken</c>, set when more
    /// edges follow).</summary>
    public async Task<NeighborsResponse> NeighborsAsync(
        string collection, string concept, string? relation = null, int? limit = null, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        var request = new NeighborsRequest { Collection = collection, Concept = concept, PageToken = pageToken ?? "" };
        if (relation is not null)
        {
            request.Relation = relation;
        }

        if (limit is int l)
        {
            request.Limit = l;
        }

        return await Call(o => Query.NeighborsAsync(request, o), cancellationToken);
    }

    /// <summary>Every stored edge touching a concept, both directions, read a page at a time
    /// (<paramref name="pageSize"/> edges per call, the server's default when null).</summary>
    public IAsyncEnumerable<Edge> AllNeighborsAsync(
        string collection, string concept, string? relation = null, int? pageSize = null, CancellationToken cancellationToken = default) =>
        EveryPage<Edge>(
            async token =>
            {
                NeighborsResponse page = await NeighborsAsync(collection, concept, relation, pageSize, token, cancellationToken);
                return (page.Edges, page.NextPageToken);
            },
            cancellationToken);

    /// <summary>The items of every page of a listing, following next_page_token from the first
    /// page. A server that hands back the token it was given would keep this reading the same page
    /// forever, so that ends the listing with an error instead.</summary>
    private static async IAsyncEnumerable<T> EveryPage<T>(
        Func<string, Task<(IEnumerable<T> Items, string Next)>> readPage, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string token = "";
        do
        {
            cancellationToken.ThrowIfCancellationRequested();
            (IEnumerable<T> items, string next) = await readPage(token);
            foreach (T item in items)
            {
                yield return item;
            }

            if (next.Length > 0 && next == token)
            {
                throw new InvalidOperationException($"the server returned the page token it was given ('{token}'), so paging would not advance");
            }

            token = next;
        }
        while (token.Length > 0);
    }

    /// <summary>The k nearest concepts of each query, one list per query in order. A reply that
    /// would pass the server's message size limit holds each query's best hits, as many for every
    /// query as fit, with <see cref="ReplyList{T}.Truncated"/> set.</summary>
    public async Task<ReplyList<IReadOnlyList<SearchHit>>> SearchAsync(
        string collection, IEnumerable<SearchQuery> queries, int k = 10, bool includeQueryConcepts = false,
        IReadOnlyDictionary<string, string>? metadataFilter = null, CancellationToken cancellationToken = default)
    {
        var request = new SearchRequest { Collection = collection, K = k, IncludeQueryConcepts = includeQueryConcepts };
        request.Queries.AddRange(queries);
        if (metadataFilter is not null)
        {
            foreach ((string key, string value) in metadataFilter)
            {
                request.MetadataFilter[key] = value;
            }
        }

        SearchResponse response = await Call(o => Query.SearchAsync(request, o), cancellationToken);
        return new ReplyList<IReadOnlyList<SearchHit>>([.. response.Results.Select(r => (IReadOnlyList<SearchHit>)r.Hits)], response.Truncated);
    }

    /// <summary>The k nearest concepts of one query (<see cref="ReplyList{T}.Truncated"/> when the
    /// server's message size limit kept fewer).</summary>
    public async Task<ReplyList<SearchHit>> SearchAsync(
        string collection, SearchQuery query, int k = 10, CancellationToken cancellationToken = default)
    {
        ReplyList<IReadOnlyList<SearchHit>> results = await SearchAsync(collection, [query], k, cancellationToken: cancellationToken);
        return new ReplyList<SearchHit>(results[0], results.Truncated);
    }

    /// <summary>What relates a to b: graph relations with proofs and the vector reading.</summary>
    public Task<RelateResponse> RelateAsync(
        string collection, string a, string b, int? k = null, int? maxDepth = null, CancellationToken cancellationToken = default)
    {
        var request = new RelateRequest { Collection = collection, A = a, B = b };
        if (k is int kk)
        {
            request.K = kk;
        }

        if (maxDepth is int depth)
        {
            request.MaxDepth = depth;
        }

        return Call(o => Query.RelateAsync(request, o), cancellationToken);
    }

    /// <summary>Recalls through a relation's facts from a concept.</summary>
    public Task<RecallResponse> RecallAsync(
        string collection, string relation, string concept, RecallDirection direction = RecallDirection.Auto,
        float? beta = null, int? k = null, CancellationToken cancellationToken = default) =>
        RecallAsync(new RecallRequest { Collection = collection, Relation = relation, Concept = concept, Direction = direction }, beta, k, cancellationToken);

    /// <summary>Recalls through a relation's facts from a vector (which may be fuzzy).</summary>
    public Task<RecallResponse> RecallAsync(
        string collection, string relation, IEnumerable<float> vector, RecallDirection direction = RecallDirection.Auto,
        float? beta = null, int? k = null, CancellationToken cancellationToken = default) =>
        RecallAsync(new RecallRequest { Collection = collection, Relation = relation, Vector = Vectors.Of(vector), Direction = direction }, beta, k, cancellationToken);

    /// <summary>Server and collection statistics.</summary>
    public Task<GetStatsResponse> GetStatsAsync(CancellationToken cancellationToken = default) =>
        Call(o => Admin.GetStatsAsync(new GetStatsRequest(), o), cancellationToken);

    /// <summary>Checkpoints one collection, or all when null; returns the seconds it took.</summary>
    public async Task<double> CheckpointAsync(string? collection = null, CancellationToken cancellationToken = default)
    {
        var request = new CheckpointRequest();
        if (collection is not null)
        {
            request.Collection = collection;
        }

        return (await Call(o => Admin.CheckpointAsync(request, o), cancellationToken)).ElapsedSeconds;
    }

    /// <summary>Starts training a collection's vectors; returns the job at once.</summary>
    public async Task<Job> LearnAsync(LearnRequest request, CancellationToken cancellationToken = default) =>
        (await Call(o => Learning.LearnAsync(request, o), cancellationToken)).Job;

    /// <summary>Starts mining a collection's relation properties; returns the job at once.</summary>
    public async Task<Job> MineAsync(MineRequest request, CancellationToken cancellationToken = default) =>
        (await Call(o => Learning.MineAsync(request, o), cancellationToken)).Job;

    /// <summary>Starts evaluating link prediction on test facts; returns the job at once. The test
    /// facts go in one message, within the server's message size limit (about 80 bytes a fact with
    /// FB15k-237's names, so its 20,466 test facts are 1.6 MB against 16 MiB by default).</summary>
    public async Task<Job> EvaluateAsync(string collection, IEnumerable<FactKey> test, CancellationToken cancellationToken = default)
    {
        var request = new EvaluateRequest { Collection = collection };
        request.Test.AddRange(test);
        try
        {
            return (await Call(o => Learning.EvaluateAsync(request, o), cancellationToken)).Job;
        }
        catch (AssocDbException e) when (e.StatusCode == StatusCode.ResourceExhausted && e.Field.Length == 0)
        {
            // The server's gRPC layer refuses a request past its limit before the service sees it,
            // saying only that a received message was too large, which named neither the test set
            // nor the setting. (The service's own refusals name their field.)
            throw new AssocDbException(
                StatusCode.ResourceExhausted,
                string.Create(CultureInfo.InvariantCulture, $"the test set ({request.Test.Count:N0} facts, {request.CalculateSize():N0} bytes) is more than the server takes in one message ")
                + $"(its Limits:MaxMessageBytes, 16 MiB by default): raise that limit, or evaluate on a sample of the facts. The server said: {e.Message}",
                e);
        }
    }

    /// <summary>A job with its latest progress and, once ended, its result or error. A mining
    /// result holds every accepted rule the server kept: when its reply had to cut them to its
    /// message size limit (<see cref="MiningReport.Truncated"/>), the rest are read with
    /// <see cref="MinedPropertiesAsync"/>. The report stays marked truncated only where the server
    /// kept fewer than passed the thresholds (<see cref="MiningReport.AcceptedCount"/>).</summary>
    public async Task<Job> GetJobAsync(string id, CancellationToken cancellationToken = default)
    {
        Job job = (await Call(o => Learning.GetJobAsync(new GetJobRequest { Id = id }, o), cancellationToken)).Job;
        if (job.Mining is { Truncated: true } report)
        {
            report.Accepted.Clear();
            await foreach (LearnedProperty property in MinedPropertiesAsync(id, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                report.Accepted.Add(property);
            }

            report.Truncated = report.Accepted.Count < report.AcceptedCount;
        }

        return job;
    }

    /// <summary>Every accepted property of a succeeded mine job, best first, read a page at a time
    /// (<paramref name="pageSize"/> properties per call, the server's default when null; a page also
    /// ends where the server's message size limit does).</summary>
    public IAsyncEnumerable<LearnedProperty> MinedPropertiesAsync(string jobId, int? pageSize = null, CancellationToken cancellationToken = default) =>
        EveryPage<LearnedProperty>(
            async token =>
            {
                var request = new ListMinedPropertiesRequest { JobId = jobId, PageToken = token };
                if (pageSize is int size)
                {
                    request.Limit = size;
                }

                ListMinedPropertiesResponse page = await Call(o => Learning.ListMinedPropertiesAsync(request, o), cancellationToken);
                return (page.Properties, page.NextPageToken);
            },
            cancellationToken);

    /// <summary>The jobs the server knows, newest first; only one collection's when given.</summary>
    public async Task<IReadOnlyList<Job>> ListJobsAsync(string? collection = null, CancellationToken cancellationToken = default)
    {
        var request = new ListJobsRequest();
        if (collection is not null)
        {
            request.Collection = collection;
        }

        return (await Call(o => Learning.ListJobsAsync(request, o), cancellationToken)).Jobs;
    }

    /// <summary>Asks a job to stop; returns the job as it is now.</summary>
    public async Task<Job> CancelJobAsync(string id, CancellationToken cancellationToken = default) =>
        (await Call(o => Learning.CancelJobAsync(new CancelJobRequest { Id = id }, o), cancellationToken)).Job;

    /// <summary>A job's progress as it changes, ending with its final state. The client's
    /// <see cref="AssocDbClientOptions.Timeout"/> does not apply: a job may run for hours.</summary>
    public async IAsyncEnumerable<JobProgress> WatchJobAsync(string id, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using AsyncServerStreamingCall<JobProgress> call = Learning.WatchJob(new WatchJobRequest { Id = id }, cancellationToken: cancellationToken);
        while (true)
        {
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }
            }
            catch (RpcException e)
            {
                throw Failure(e, cancellationToken);
            }

            yield return call.ResponseStream.Current;
        }
    }

    /// <summary>Watches a job until it ends, passing each progress message to
    /// <paramref name="progress"/>, and returns the ended job with its result or error. A job that
    /// ended cancelled and can no longer be read (a server that shuts down cancels its jobs, ends
    /// their streams and then takes no more calls) is returned as the stream's last message
    /// describes it: its id, state and progress; a cancelled job has no result or error.</summary>
    public async Task<Job> WaitForJobAsync(string id, Action<JobProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        JobProgress? last = null;
        await foreach (JobProgress update in WatchJobAsync(id, cancellationToken).ConfigureAwait(false))
        {
            progress?.Invoke(update);
            last = update;
        }

        try
        {
            return await GetJobAsync(id, cancellationToken).ConfigureAwait(false);
        }
        catch (AssocDbException) when (last?.State == JobState.Cancelled)
        {
            return new Job { Id = id, State = JobState.Cancelled, Progress = last };
        }
    }

    /// <summary>Applies the accepted properties of a succeeded mine job: as learned properties, or
    /// declared with <paramref name="declare"/>. Returns how many changed something.</summary>
    public async Task<int> ApplyLearnedPropertiesAsync(string collection, string mineJobId, bool declare = false, CancellationToken cancellationToken = default)
    {
        var request = new ApplyLearnedPropertiesRequest { Collection = collection, MineJobId = mineJobId, Declare = declare };
        return (await Call(o => Learning.ApplyLearnedPropertiesAsync(request, o), cancellationToken)).Applied;
    }

    /// <summary>Applies these properties (each with its statistics): as learned properties, or
    /// declared with <paramref name="declare"/>. Returns how many changed something.</summary>
    public async Task<int> ApplyLearnedPropertiesAsync(
        string collection, IEnumerable<LearnedProperty> properties, bool declare = false, CancellationToken cancellationToken = default)
    {
        var request = new ApplyLearnedPropertiesRequest { Collection = collection, Properties = new LearnedPropertyList(), Declare = declare };
        request.Properties.Properties.AddRange(properties);
        return (await Call(o => Learning.ApplyLearnedPropertiesAsync(request, o), cancellationToken)).Applied;
    }

    /// <summary>The last durable batch sequence number of an ingest session; -1 when it has none.</summary>
    public async Task<long> GetIngestProgressAsync(string collection, string session, CancellationToken cancellationToken = default) =>
        (await Call(o => Ingest.GetIngestProgressAsync(new GetIngestProgressRequest { Collection = collection, Session = session }, o), cancellationToken)).LastSequence;

    /// <inheritdoc />
    public void Dispose() => _channel.Dispose();

    private Task<RecallResponse> RecallAsync(RecallRequest request, float? beta, int? k, CancellationToken cancellationToken)
    {
        if (beta is float b)
        {
            request.Beta = b;
        }

        if (k is int kk)
        {
            request.K = kk;
        }

        return Call(o => Query.RecallAsync(request, o), cancellationToken);
    }

    /// <summary>
    /// What a failed call throws. A call its caller cancelled throws
    /// <see cref="OperationCanceledException"/> even when grpc-dotnet reports it as UNAVAILABLE: the
    /// cancellation aborts the response, and a read that sees the abort before the call is marked
    /// cancelled fails as a broken connection ("Error reading next message. IOException: The request
    /// was aborted."), which callers that handle their own cancellation took for a server failure.
    /// </summary>
    internal static Exception Failure(RpcException e, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested && e.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled
            ? new OperationCanceledException("The call was cancelled.", e, cancellationToken)
            : new AssocDbException(e);

    private async Task<T> Call<T>(Func<CallOptions, AsyncUnaryCall<T>> start, CancellationToken cancellationToken, [CallerMemberName] string operation = "")
    {
        DateTime? deadline = DateTime.UtcNow + _timeout;
        try
        {
            using AsyncUnaryCall<T> call = start(new CallOptions(deadline: deadline, cancellationToken: cancellationToken));
            return await call.ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            throw Failure(e, cancellationToken);
        }
        catch (OperationCanceledException e) when (_timeout is TimeSpan timeout && !cancellationToken.IsCancellationRequested)
        {
            // Not the caller's token: the deadline passed (grpc-dotnet reports DEADLINE_EXCEEDED, its own
            // timer's or the server's, as a cancellation). The server may have applied a write anyway.
            string name = operation.EndsWith("Async", StringComparison.Ordinal) ? operation[..^"Async".Length] : operation;
            string seconds = timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            // A job's start is the one outcome a read-back cannot find by what was written: its reply,
            // on its way as the deadline passed, held the job's id (the server cancels the job only
            // when it gives up the call itself).
            string advice = operation is nameof(LearnAsync) or nameof(MineAsync) or nameof(EvaluateAsync)
                ? "the job may have started: ListJobs on the collection shows it, to watch or cancel."
                : "a write may have been applied. Read it back to check, or write through an ingest session, which applies each batch once however often it is sent.";
            throw new AssocDbException(
                StatusCode.DeadlineExceeded, $"{name} did not finish within {seconds} s (the client's timeout), so its outcome is unknown: {advice}", e);
        }
    }
}
