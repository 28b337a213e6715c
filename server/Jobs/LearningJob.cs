using System.Runtime.CompilerServices;
using AssocDB.Engine.Learning;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Jobs;

/// <summary>Why a job failed: the status code its error maps to (chosen in
/// <see cref="Errors.GrpcErrors"/>), the request field at fault and a sentence for people.</summary>
public sealed record JobFailure(StatusCode Code, string Field, string Message);

/// <summary>
/// A job's state at one moment. A job never changes a status: it replaces it with a higher
/// <paramref name="Version"/>, so a reader holds a consistent view without locking.
/// </summary>
/// <param name="Version">Increases with every change.</param>
/// <param name="State">Running, or how the job ended.</param>
/// <param name="Fraction">The share of the work done, 0..1.</param>
/// <param name="Training">The latest epoch report of a learn job.</param>
/// <param name="ValidationMrr">The most recent validation MRR of a learn job.</param>
/// <param name="FinishedAt">When the job ended.</param>
/// <param name="Failure">Why it failed, when it did.</param>
/// <param name="Result">The engine's report (training, mining or evaluation) when it succeeded.</param>
internal sealed record JobStatus(
    long Version,
    JobState State,
    double Fraction,
    TrainingProgress? Training,
    double? ValidationMrr,
    DateTimeOffset? FinishedAt,
    JobFailure? Failure,
    object? Result)
{
    /// <summary>Whether the job has ended; a final status is never replaced.</summary>
    public bool IsFinal => State != JobState.Running;
}

/// <summary>
/// One learning job (learn, mine or evaluate) on one collection: its cancellation, its progress as
/// the engine reports it, and how it ended. Created and finished by <see cref="JobRegistry"/>.
/// </summary>
internal sealed class LearningJob : IProgress<double>
{
    // Never disposed: it has no timer and no wait handle is taken from it, and CancelJob may still
    // call Cancel (then a no-op) after the job has ended.
    private readonly CancellationTokenSource _cancellation = new();
    private readonly Lock _lock = new();
    private JobStatus _status = new(0, JobState.Running, 0, null, null, null, null, null);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Weak: a finished job is kept (with up to MaxFinished others) long after its collection may
    // have been dropped, and must not keep that collection's tables in memory.
    private readonly WeakReference<Engine.Collection> _target;

    public LearningJob(string id, long sequence, JobKind kind, Engine.Collection target, DateTimeOffset startedAt)
    {
        Id = id;
        Sequence = sequence;
        Kind = kind;
        _target = new WeakReference<Engine.Collection>(target);
        Collection = target.Name;
        StartedAt = startedAt;
    }

    public string Id { get; }

    /// <summary>The order jobs were started in.</summary>
    public long Sequence { get; }

    public JobKind Kind { get; }

    /// <summary>The name of the collection the job works on.</summary>
    public string Collection { get; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>Whether the job works on <paramref name="collection"/>: this instance, not an earlier
    /// one of the same name dropped since.</summary>
    public bool WorksOn(Engine.Collection collection) => _target.TryGetTarget(out Engine.Collection? target) && target == collection;

    /// <summary>The current status.</summary>
    public JobStatus Status
    {
        get
        {
            lock (_lock)
            {
                return _status;
            }
        }
    }

    /// <summary>Cancelled by <see cref="Cancel"/>; the engine call of the job observes it.</summary>
    public CancellationToken CancellationToken => _cancellation.Token;

    /// <summary>Asks the engine to stop. The job ends CANCELLED once the engine notices; a job that
    /// has ended stays as it is.</summary>
    public void Cancel() => _cancellation.Cancel();

    /// <summary>Records the share of work done (mining, evaluation).</summary>
    public void Report(double value) => Update(s => s with { Fraction = Math.Clamp(value, 0, 1) });

    /// <summary>Receives a training run's epoch reports; the share done is epochs over the most
    /// epochs, or time over <paramref name="timeLimit"/>, whichever is further.</summary>
    public IProgress<TrainingProgress> TrainingProgress(TimeSpan? timeLimit) => new TrainingReporter(this, timeLimit);

    /// <summary>Ends the job; later reports are ignored.</summary>
    public void Finish(JobState state, object? result, JobFailure? failure) => Update(s => s with
    {
        State = state,
        Fraction = state == JobState.Succeeded ? 1 : s.Fraction,
        FinishedAt = DateTimeOffset.UtcNow,
        Failure = failure,
        Result = result,
    });

    /// <summary>
    /// The current status at once, then each change, at most one per <paramref name="interval"/>
    /// (a slow reader skips to the latest), ending with the final status.
    /// </summary>
    public async IAsyncEnumerable<JobStatus> WatchAsync(TimeSpan interval, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        long seen = -1;
        while (true)
        {
            JobStatus status;
            Task changed;
            lock (_lock)
            {
                status = _status;
                changed = _changed.Task;
            }

            if (status.Version == seen)
            {
                await changed.WaitAsync(cancellationToken);
                continue;
            }

            yield return status;
            if (status.IsFinal)
            {
                yield break;
            }

            seen = status.Version;
            await Task.Delay(interval, cancellationToken);
        }
    }

    private void Update(Func<JobStatus, JobStatus> change)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            if (_status.IsFinal)
            {
                return;
            }

            _status = change(_status) with { Version = _status.Version + 1 };
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.SetResult();
    }

    private sealed class TrainingReporter(LearningJob job, TimeSpan? timeLimit) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            double byEpochs = (double)value.Epoch / value.MaxEpochs;
            double byTime = timeLimit is { } limit ? value.Elapsed / limit : 0;
            job.Update(s => s with
            {
                Fraction = Math.Clamp(Math.Max(byEpochs, byTime), 0, 1),
                Training = value,
                ValidationMrr = value.ValidationMrr ?? s.ValidationMrr,
            });
        }
    }
}
