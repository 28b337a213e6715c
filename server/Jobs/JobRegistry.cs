using System.Security.Cryptography;
using AssocDB.Engine.Model;
using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;
using JobKind = AssocDB.Protocol.V1.JobKind;
using JobState = AssocDB.Protocol.V1.JobState;

namespace AssocDB.Server.Jobs;

/// <summary>
/// The server's learning jobs, in memory: each running job, and the most recent
/// <see cref="JobOptions.MaxFinished"/> finished ones. A collection runs one job at a time, so a
/// training run never races another run's writes and mining or evaluation never reads vectors a
/// training run is about to replace. When the server begins to stop, every running job is
/// cancelled (so open WatchJob streams end and the shutdown checkpoint sees no half-done work),
/// and stopping waits for them.
/// </summary>
internal sealed partial class JobRegistry : IHostedService
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LearningJob> _jobs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (LearningJob Job, Task Completion)> _runningByCollection = new(StringComparer.Ordinal);
    private readonly Queue<LearningJob> _finished = new();
    private readonly int _maxFinished;
    private readonly int _maxRunning;
    private readonly ILogger<JobRegistry> _logger;
    private long _sequence;

    public JobRegistry(AssocServerOptions options, IHostApplicationLifetime lifetime, ILogger<JobRegistry> logger)
    {
        _maxFinished = options.Jobs.MaxFinished;
        _maxRunning = options.Jobs.MaxRunning;
        _logger = logger;
        lifetime.ApplicationStopping.Register(CancelAll);
    }

    /// <summary>
    /// Starts a job on <paramref name="target"/> running <paramref name="work"/>. The work runs on
    /// the calling thread until its first await, so an error it returns before then (bad settings,
    /// nothing to work on) is this call's error and no job is kept. FAILED_PRECONDITION naming
    /// <c>collection</c> while another job runs on it; RESOURCE_EXHAUSTED while
    /// <see cref="JobOptions.MaxRunning"/> jobs run. <paramref name="abandoned"/> fires when the call
    /// starting the job fails (its deadline passes, its client goes away): that client is told the
    /// call failed and never learns the job's id, so when it fires during the work's first steps or
    /// before this returns, the job is cancelled (it ends CANCELLED, having written nothing, and
    /// frees the collection) and this throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public Result<LearningJob> Start<T>(Engine.Collection target, JobKind kind, Func<LearningJob, CancellationToken, Task<Result<T>>> work, CancellationToken abandoned)
        where T : class
    {
        string collection = target.Name;
        LearningJob job;
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_runningByCollection.TryGetValue(collection, out var busy))
            {
                return new EngineError(ErrorCode.FailedPrecondition, "collection",
                    $"job {busy.Job.Id} ({busy.Job.Kind}) is still running on collection '{collection}'; cancel it or wait for it to end");
            }

            if (_runningByCollection.Count >= _maxRunning)
            {
                return new EngineError(ErrorCode.ResourceExhausted, "collection",
                    $"{_runningByCollection.Count} jobs are running, the server's limit (Jobs:MaxRunning); wait for one to end");
            }

            job = new LearningJob(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), ++_sequence, kind, target, DateTimeOffset.UtcNow);
            _jobs.Add(job.Id, job);
            // Until the work's first steps return (a training snapshot copies all of W), whoever waits
            // for this job (a drop, shutdown) waits on this stand-in, which ends when the job does.
            _runningByCollection.Add(collection, (job, ended.Task));
        }

        Task<Result<T>> running;
        // The work's first steps (a training snapshot copies all of W) run on the caller's thread
        // and see only the job's token: an abandoned call cancels it at once, so they stop at
        // their first check instead of handing a job nobody knows of to the thread pool.
        using (abandoned.Register(job.Cancel))
        {
            try
            {
                running = work(job, job.CancellationToken);
            }
            catch (Exception e)
            {
                Forget(job, GrpcErrors.JobFault(e));
                ended.TrySetResult();
                throw;
            }
        }

        if (running.IsCompletedSuccessfully && !running.Result.IsOk)
        {
            Forget(job, GrpcErrors.JobFailed(running.Result.Error!));
            ended.TrySetResult();
            return running.Result.Error!;
        }

        Task completion = CompleteAsync(job, running);
        _ = completion.ContinueWith(_ => ended.TrySetResult(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        lock (_lock)
        {
            if (_runningByCollection.TryGetValue(collection, out var entry) && entry.Job == job)
            {
                _runningByCollection[collection] = (job, completion);
            }
        }

        LogStarted(job.Id, job.Kind, collection);
        // Checked after the registration is gone, so a call abandoned at any moment until now
        // leaves no job running.
        if (abandoned.IsCancellationRequested)
        {
            job.Cancel();
            throw new OperationCanceledException(abandoned);
        }

        return job;
    }

    /// <summary>A job by id; NOT_FOUND naming <paramref name="field"/> when unknown or forgotten.</summary>
    public Result<LearningJob> Get(string id, string field = "id")
    {
        lock (_lock)
        {
            return _jobs.TryGetValue(id, out LearningJob? job)
                ? job
                : new EngineError(ErrorCode.NotFound, field, $"no job '{id}' (finished jobs are kept only until {_maxFinished} newer ones have finished, and not across restarts)");
        }
    }

    /// <summary>Cancels the job running on <paramref name="collection"/>, if any, and waits for it to
    /// end: a dropped collection's job has nothing left to write to. A job on another collection
    /// of its name (created after a drop) is left running.</summary>
    public async Task CancelRunningAsync(Engine.Collection collection)
    {
        (LearningJob Job, Task Completion) running;
        lock (_lock)
        {
            if (!_runningByCollection.TryGetValue(collection.Name, out running) || !running.Job.WorksOn(collection))
            {
                return;
            }
        }

        running.Job.Cancel();
        await running.Completion;
    }

    /// <summary>The known jobs, newest first, optionally only one collection's.</summary>
    public IReadOnlyList<LearningJob> List(string? collection)
    {
        lock (_lock)
        {
            return [.. _jobs.Values.Where(j => collection is null || j.Collection == collection).OrderByDescending(j => j.Sequence)];
        }
    }

    /// <summary>The report of a succeeded mine job; errors name <paramref name="field"/>. With
    /// <paramref name="collection"/>, only a job that mined it (this one, not one of its name
    /// dropped since).</summary>
    public Result<MiningReport> MiningResult(string id, string field, Engine.Collection? collection = null)
    {
        Result<LearningJob> found = Get(id, field);
        if (!found.IsOk)
        {
            return found.Error!;
        }

        LearningJob job = found.Value;
        JobStatus status = job.Status;
        return job.Kind != JobKind.Mine ? new EngineError(ErrorCode.InvalidArgument, field, $"job {id} is a {job.Kind} job, not a mine job")
            : collection is not null && job.Collection != collection.Name ? new EngineError(ErrorCode.InvalidArgument, field, $"job {id} mined collection '{job.Collection}', not '{collection.Name}'")
            : collection is not null && !job.WorksOn(collection) ? new EngineError(ErrorCode.FailedPrecondition, field, $"job {id} mined a collection '{job.Collection}' that has been dropped since; mine this one")
            : status.Result is MiningReport report ? report
            : new EngineError(ErrorCode.FailedPrecondition, field, $"job {id} has not succeeded (it is {status.State})");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Cancels the running jobs and waits until each has ended.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        CancelAll();
        Task[] running;
        lock (_lock)
        {
            running = [.. _runningByCollection.Values.Select(r => r.Completion)];
        }

        return Task.WhenAll(running).WaitAsync(cancellationToken);
    }

    private void CancelAll()
    {
        lock (_lock)
        {
            foreach ((LearningJob job, _) in _runningByCollection.Values)
            {
                job.Cancel();
            }
        }
    }

    private async Task CompleteAsync<T>(LearningJob job, Task<Result<T>> running)
        where T : class
    {
        JobState state;
        object? result = null;
        JobFailure? failure = null;
        try
        {
            Result<T> outcome = await running;
            if (outcome.IsOk)
            {
                (state, result) = (JobState.Succeeded, outcome.Value);
            }
            else
            {
                (state, failure) = (JobState.Failed, GrpcErrors.JobFailed(outcome.Error!));
            }
        }
        catch (OperationCanceledException) when (job.CancellationToken.IsCancellationRequested)
        {
            state = JobState.Cancelled;
        }
        catch (Exception e)
        {
            // A fault, not an outcome: the job records it and the server keeps serving. Out of
            // memory too (mining a graph of very many relations, a large training step): left to
            // escape, it kept the job RUNNING for ever and its collection impossible to drop.
            LogFault(e, job.Id, job.Kind, job.Collection);
            (state, failure) = (JobState.Failed, GrpcErrors.JobFault(e));
        }

        // The collection is free before the final state is published, so a client that saw the job
        // end can start the next one at once.
        lock (_lock)
        {
            _runningByCollection.Remove(job.Collection);
            _finished.Enqueue(job);
            while (_finished.Count > _maxFinished)
            {
                _jobs.Remove(_finished.Dequeue().Id);
            }
        }

        job.Finish(state, result, failure);
        LogFinished(job.Id, job.Kind, job.Collection, state);
    }

    /// <summary>Removes a job refused as it started. It was listed (and could be watched) while its
    /// first steps ran, so it ends FAILED first: a WatchJob stream waits for a final state.</summary>
    private void Forget(LearningJob job, JobFailure failure)
    {
        job.Finish(JobState.Failed, null, failure);
        lock (_lock)
        {
            _jobs.Remove(job.Id);
            _runningByCollection.Remove(job.Collection);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {Id} ({Kind}) started on collection {Collection}")]
    private partial void LogStarted(string id, JobKind kind, string collection);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {Id} ({Kind}) on collection {Collection} ended {State}")]
    private partial void LogFinished(string id, JobKind kind, string collection, JobState state);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {Id} ({Kind}) on collection {Collection} failed with a fault")]
    private partial void LogFault(Exception exception, string id, JobKind kind, string collection);
}
