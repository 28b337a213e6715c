using AssocDB.Engine;
using AssocDB.Protocol.V1;
using AssocDB.Server.Errors;
using AssocDB.Server.Hosting;
using AssocDB.Server.Jobs;
using AssocDB.Server.Mapping;
using Grpc.Core;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Services;

/// <summary>assocdb.v1.LearningService: validate → start a job running the engine call → map. The
/// <see cref="JobRegistry"/> runs, tracks and cancels the jobs.</summary>
[BindServiceMethod(typeof(LearningServiceBinding), nameof(LearningServiceBinding.BindService))]
internal sealed class LearningApi(DatabaseHost host, JobRegistry jobs, RequestLimits limits, ReplyBudget budget) : LearningService.LearningServiceBase
{
    /// <summary>The most items of the lists one call may send: an Evaluate's test facts and an
    /// ApplyLearnedProperties' properties. Far above the standard splits (FB15k-237 has 20,466 test
    /// facts) and what mining applies (100,000 rules of a kind at most), it bounds what the request's
    /// parser builds: a 16 MiB message of empty facts was 8 M of them, about 400 MB before any check.</summary>
    public const int MaxListedItems = 1_000_000;

    private const double DefaultValidationFraction = 0.05;

    /// <summary>Room kept when a mining result's rules are cut to size: the truncated flag, and the
    /// job's and the report's length prefixes, which grow by up to 4 bytes each as rules are added.</summary>
    private const int CutReportBytes = 2 + 4 + 4;

    /// <summary>The least time between two messages of a WatchJob stream.</summary>
    private static readonly TimeSpan WatchInterval = TimeSpan.FromMilliseconds(100);

    public override Task<LearnResponse> Learn(LearnRequest request, ServerCallContext context)
    {
        var options = request.ToEngine();
        double validationFraction = request.HasValidationFraction ? request.ValidationFraction : DefaultValidationFraction;
        Collection collection = host.Collection(request.Collection);
        LearningJob job = jobs.Start(collection, JobKind.Learn, async (job, ct) =>
            (await collection.TrainAsync(options, validationFraction, job.TrainingProgress(options.TimeLimit), ct)).WithProtoFieldNames(), context.CancellationToken).Unwrap();
        return Task.FromResult(Started(job, context, new LearnResponse { Job = job.ToProto() }));
    }

    public override Task<MineResponse> Mine(MineRequest request, ServerCallContext context)
    {
        var options = request.ToEngine();
        Collection collection = host.Collection(request.Collection);
        LearningJob job = jobs.Start(collection, JobKind.Mine, (job, ct) =>
            Task.Run(() => collection.MineProperties(options, job, ct), ct), context.CancellationToken).Unwrap();
        // A job on a small graph can have ended already: its reply then holds the result, whose
        // rules are added as GetJob adds them.
        return Task.FromResult(Started(job, context, Reply(job, message => new MineResponse { Job = message })));
    }

    public override Task<EvaluateResponse> Evaluate(EvaluateRequest request, ServerCallContext context)
    {
        if (request.Test.Count == 0)
        {
            throw GrpcErrors.InvalidArgument("test", "must hold at least one fact");
        }

        List<E.FactKey> test = [.. request.Test.Select(f => f.ToEngine())];
        Collection collection = host.Collection(request.Collection);
        LearningJob job = jobs.Start(collection, JobKind.Evaluate, (job, ct) =>
            Task.Run(() => collection.Evaluate(test, job, ct), ct), context.CancellationToken).Unwrap();
        return Task.FromResult(Started(job, context, new EvaluateResponse { Job = job.ToProto() }));
    }

    public override Task<GetJobResponse> GetJob(GetJobRequest request, ServerCallContext context) =>
        Task.FromResult(Reply(jobs.Get(request.Id).Unwrap(), job => new GetJobResponse { Job = job }));

    public override Task<ListMinedPropertiesResponse> ListMinedProperties(ListMinedPropertiesRequest request, ServerCallContext context)
    {
        int limit = limits.Results(request.HasLimit, request.Limit);
        IReadOnlyList<E.LearnedProperty> accepted = jobs.MiningResult(request.JobId, "job_id").Unwrap().Accepted;
        // A token is the position of the last rule a page returned: a finished job's list never changes.
        // Checked before the position moves on: the largest token, moved on, wrapped to a negative start.
        int after = PageTokens.After(request.PageToken, "property");
        if (after >= accepted.Count)
        {
            throw GrpcErrors.InvalidArgument("page_token", $"reads on after property {after}, but the job accepted {accepted.Count}");
        }

        int start = after + 1;

        var response = new ListMinedPropertiesResponse();
        int end = Math.Min(accepted.Count, start + limit);
        int kept = budget.Fill(response, response.Properties, ListMinedPropertiesResponse.PropertiesFieldNumber,
            accepted.Take(start..end).Select(p => p.ToProto()), reserved: PageTokens.Bytes);
        response.NextPageToken = start + kept < accepted.Count ? PageTokens.Of(start + kept - 1) : "";
        return Task.FromResult(response);
    }

    public override Task<ListJobsResponse> ListJobs(ListJobsRequest request, ServerCallContext context)
    {
        var response = new ListJobsResponse();
        // Without their results, which GetJob gives: one mining result can pass the message size
        // (250,000 accepted rules), and the whole server's job list then failed to send until
        // that job aged out.
        response.Jobs.AddRange(jobs.List(request.HasCollection ? request.Collection : null).Select(j =>
        {
            Job job = j.ToProto();
            job.ClearResult();
            return job;
        }));
        return Task.FromResult(response);
    }

    public override Task<CancelJobResponse> CancelJob(CancelJobRequest request, ServerCallContext context)
    {
        LearningJob job = jobs.Get(request.Id).Unwrap();
        job.Cancel();
        return Task.FromResult(Reply(job, message => new CancelJobResponse { Job = message }));
    }

    public override async Task WatchJob(WatchJobRequest request, IServerStreamWriter<JobProgress> responseStream, ServerCallContext context)
    {
        LearningJob job = jobs.Get(request.Id).Unwrap();
        await foreach (JobStatus status in job.WatchAsync(WatchInterval, context.CancellationToken))
        {
            await responseStream.WriteAsync(job.ToProgress(status), context.CancellationToken);
        }
    }

    public override async Task<ApplyLearnedPropertiesResponse> ApplyLearnedProperties(ApplyLearnedPropertiesRequest request, ServerCallContext context)
    {
        Collection collection = host.Collection(request.Collection);
        IReadOnlyList<E.LearnedProperty> properties = request.SourceCase switch
        {
            ApplyLearnedPropertiesRequest.SourceOneofCase.MineJobId => jobs.MiningResult(request.MineJobId, "mine_job_id", collection).Unwrap().Accepted,
            ApplyLearnedPropertiesRequest.SourceOneofCase.Properties => [.. request.Properties.Properties.Select((p, i) => p.ToEngine($"properties[{i}]"))],
            _ => throw GrpcErrors.InvalidArgument("source", "set mine_job_id or properties"),
        };
        int applied = (await collection.ApplyLearnedPropertiesAsync(properties, request.Declare, context.CancellationToken)).WithProtoFieldNames().Unwrap();
        return new ApplyLearnedPropertiesResponse { Applied = applied };
    }

    /// <summary>
    /// The reply to the call that started <paramref name="job"/>, which stays tied to the call until
    /// the call has ended: grpc-dotnet writes the reply after the handler returns, and when the
    /// call's deadline passes first (or its client goes) it answers DEADLINE_EXCEEDED (CANCELLED)
    /// instead, so that client never learns the job's id. The job then ran on unseen, holding the
    /// collection, and a learn replaced every vector at its end. The call's token fires in those
    /// cases only, never once the call has ended OK (its deadline timer is stopped then), so a job
    /// whose reply went out is left alone.
    /// </summary>
    private static TReply Started<TReply>(LearningJob job, ServerCallContext context, TReply reply)
    {
        context.GetHttpContext().Response.RegisterForDispose(context.CancellationToken.Register(job.Cancel));
        return reply;
    }

    /// <summary>
    /// The reply <paramref name="wrap"/> makes of the job as it is now, holding as many of a mining
    /// result's accepted rules, best first, as the message size limit leaves room for, and marked
    /// truncated when that is fewer than all: a large graph's rules passed the limit, and the job's
    /// result could then not be read at all.
    /// </summary>
    private TReply Reply<TReply>(LearningJob job, Func<Job, TReply> wrap)
        where TReply : Google.Protobuf.IMessage
    {
        Job message = job.ToProto();
        TReply reply = wrap(message);
        // A job with a mining result in its message is final, so its status, result included, is what was mapped.
        if (message.Mining is MiningReport report && job.Status.Result is E.MiningReport mined)
        {
            int kept = budget.Fill(reply, report.Accepted, MiningReport.AcceptedFieldNumber, mined.Accepted.Select(p => p.ToProto()), reserved: CutReportBytes);
            report.Truncated = kept < mined.AcceptedCount;
        }

        return reply;
    }
}
