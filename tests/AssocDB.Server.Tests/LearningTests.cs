using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests;

/// <summary>
/// Learning over gRPC as a client sees it: learn, mine and evaluate run as jobs that stream their
/// progress and end with their result; mined rules applied as learned answer held-back facts with
/// their confidence; a job can be cancelled; a collection runs one job at a time; bad requests get
/// the documented status naming the field. Graphs are tiny, so every job ends in well under a second.
/// </summary>
public sealed class LearningTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly AssocDbClient _client = fixture.Client;

    /// <summary>Thirty three-generation families, each g mother_of m mother_of c, with child_of and
    /// grandmother_of stated too, except family 0's `c0 child_of m0` and `g0 grandmother_of c0`.</summary>
    internal static IEnumerable<FactInput> FamilyFacts()
    {
        for (int f = 0; f < 30; f++)
        {
            (string g, string m, string c) = ($"g{f}", $"m{f}", $"c{f}");
            yield return Fact(g, "mother_of", m);
            yield return Fact(m, "mother_of", c);
            yield return Fact(m, "child_of", g);
            if (f > 0)
            {
                yield return Fact(c, "child_of", m);
                yield return Fact(g, "grandmother_of", c);
            }
        }
    }

    // A mine job on a small graph can end before its start call's reply is made, and that reply
    // then holds the job's result. The result's rules were left out of it (they are added only to
    // replies that cut them to the message limit), so it read as a succeeded job with
    // accepted_count rules, none of them there, and not marked truncated: about 1 reply in 300 here.
    [Fact]
    public async Task A_mine_job_that_ends_before_its_start_reply_is_answered_with_its_rules()
    {
        string[] collections = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => FamilyCollection("mine-reply", dimension: 4)));
        await Task.WhenAll(collections.Select(async c =>
        {
            for (int round = 0; round < 400; round++)
            {
                Job started = await _client.MineAsync(new MineRequest { Collection = c });
                if (started.Mining is { } report)
                {
                    Assert.False(report.Truncated);
                    Assert.Equal(report.AcceptedCount, report.Accepted.Count);
                }

                // One job per collection at a time. A finished job is kept only until 100 newer
                // ones finish, and the other two loops can finish that many before this wait reads
                // it (once in a CI run): gone, it has finished.
                try
                {
                    await _client.WaitForJobAsync(started.Id);
                }
                catch (AssocDbException gone) when (gone.StatusCode == StatusCode.NotFound)
                {
                }
            }
        }));
    }

    [Fact]
    public async Task Mined_inverse_and_composition_applied_as_learned_answer_held_back_facts()
    {
        string c = await FamilyCollection("mine", dimension: 4);
        Job job = await _client.MineAsync(new MineRequest { Collection = c });
        Assert.Equal((JobKind.Mine, c), (job.Kind, job.Collection));

        job = await _client.WaitForJobAsync(job.Id);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(1.0, job.Progress.FractionDone);
        LearnedProperty inverse = Assert.Single(job.Mining.Accepted, p => p.Kind == PropertyKind.Inverse && p.Relation == "child_of" && p.Inverse == "mother_of");
        LearnedProperty grandmother = Assert.Single(job.Mining.Accepted, p => p.Kind == PropertyKind.Composition && p.Relation == "grandmother_of");
        Assert.Equal(("mother_of", "mother_of"), (grandmother.First, grandmother.Second));
        // The held-back facts belong to subjects with no stored fact of the head relation, so the
        // partial-completeness confidence is exact.
        Assert.Equal(1.0, inverse.Statistics.PcaConfidence, 9);
        Assert.Equal(1.0, grandmother.Statistics.PcaConfidence, 9);
        Assert.Equal("child_of = inverse(mother_of)", inverse.Rule);
        Assert.Empty((await _client.RelatedAsync(c, "c0", "child_of")).Answers);

        Assert.True(await _client.ApplyLearnedPropertiesAsync(c, job.Id) >= 2);

        Answer mother = Assert.Single((await _client.RelatedAsync(c, "c0", "child_of")).Answers);
        Assert.Equal(("m0", AnswerKind.Learned, inverse.Statistics.PcaConfidence), (mother.Concept, mother.Kind, mother.Score));
        Answer grandchild = Assert.Single((await _client.RelatedAsync(c, "g0", "grandmother_of")).Answers, a => a.Concept == "c0");
        Assert.Equal((AnswerKind.Learned, grandmother.Statistics.PcaConfidence), (grandchild.Kind, grandchild.Score));
        Assert.Equal(["m0 mother_of c0"], grandchild.Proof.Facts.Skip(1).Select(f => $"{f.Head} {f.Relation} {f.Tail}"));

        RelationInfo childOf = await _client.GetRelationAsync(c, "child_of");
        Assert.Contains(childOf.Learned, p => p.Rule == "child_of = inverse(mother_of)");
        Assert.Equal("", childOf.InverseOf);
    }

    [Fact]
    public async Task Learn_streams_epochs_and_writes_vectors_that_search_uses()
    {
        string c = await FamilyCollection("learn", dimension: 8);
        var request = new LearnRequest
        {
            Collection = c,
            Model = EmbeddingModel.Rotate,
            MaxEpochs = 4,
            BatchSize = 16,
            NegativeSamples = 4,
            ValidateEvery = 2,
            ValidationFraction = 0.1,
            Seed = 3,
        };
        Job job = await _client.LearnAsync(request);

        var updates = new List<JobProgress>();
        job = await _client.WaitForJobAsync(job.Id, updates.Add);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(JobState.Succeeded, updates[^1].State);
        Assert.All(updates.SkipLast(1), u => Assert.Equal(JobState.Running, u.State));
        Assert.Equal(4, updates[^1].Epoch);
        Assert.True(updates[^1].HasLoss && updates[^1].HasValidationMrr && updates[^1].TriplesPerSecond > 0);
        Assert.True(updates.Select(u => u.FractionDone).SequenceEqual(updates.Select(u => u.FractionDone).Order()));

        TrainingReport report = job.Training;
        Assert.Equal((EmbeddingModel.Rotate, 4, 90, 3), (report.Model, report.EpochsRun, report.ConceptsWritten, report.RelationsWritten));
        Assert.Equal(TrainingStopReason.MaxEpochs, report.StopReason);
        Assert.True(report.HasBestValidationMrr);

        RelationInfo motherOf = await _client.GetRelationAsync(c, "mother_of");
        Assert.Equal((RelationVectorSource.Trained, RelationOperator.Rotation), (motherOf.VectorSource, motherOf.Operator));
        Assert.Equal(5, (await _client.SearchAsync(c, Queries.Concept("g1", plus: ["mother_of"]), k: 5)).Count);
        // The list leaves results out (one mining result can pass the message size, and every
        // list then failed); GetJob has it.
        Job listed = Assert.Single(await _client.ListJobsAsync(c), j => j.Id == job.Id);
        Assert.Equal((JobState.Succeeded, Job.ResultOneofCase.None), (listed.State, listed.ResultCase));
        Assert.Equal(Job.ResultOneofCase.Training, (await _client.GetJobAsync(job.Id)).ResultCase);
    }

    [Fact]
    public async Task Evaluate_ranks_test_facts_and_counts_the_unknown_ones()
    {
        string c = await FamilyCollection("evaluate", dimension: 8);
        FactKey[] test = [Key("c0", "child_of", "m0"), Key("g0", "grandmother_of", "c0"), Key("g5", "mother_of", "m5"), Key("nobody", "mother_of", "m5")];
        Job job = await _client.WaitForJobAsync((await _client.EvaluateAsync(c, test)).Id);

        Assert.Equal(JobState.Succeeded, job.State);
        EvaluationReport report = job.Evaluation;
        Assert.Equal(1, report.Skipped);
        Assert.Equal((6, 3, 3), (report.Overall.Queries, report.TailPrediction.Queries, report.HeadPrediction.Queries));
        Assert.InRange(report.Overall.Mrr, 1.0 / 90, 1.0);
        Assert.InRange(report.Overall.HitsAt10, report.Overall.HitsAt1, 1.0);
        Assert.Equal(["mother_of", "child_of", "grandmother_of"], report.PerRelation.Select(r => r.Relation));
        Assert.Equal(6, report.PerRelation.Sum(r => r.Metrics.Queries));
    }

    [Fact]
    public async Task Cancelled_learn_job_ends_cancelled_writes_nothing_and_frees_the_collection()
    {
        string c = await FamilyCollection("cancel", dimension: 8);
        Job job = await StartEndlessTrainingAsync(c);

        // One job per collection: a second one, of any kind, waits for the first to end.
        var busy = await Assert.ThrowsAsync<AssocDbException>(() => _client.LearnAsync(new LearnRequest { Collection = c }));
        Assert.Equal((StatusCode.FailedPrecondition, "collection"), (busy.StatusCode, busy.Field));
        Assert.Contains(job.Id, busy.Message, StringComparison.Ordinal);
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<AssocDbException>(() => _client.MineAsync(new MineRequest { Collection = c }))).StatusCode);

        Job cancelling = await _client.CancelJobAsync(job.Id);
        Assert.Equal(job.Id, cancelling.Id);
        Job ended = await _client.WaitForJobAsync(job.Id);
        Assert.Equal(JobState.Cancelled, ended.State);
        Assert.Equal(Job.ResultOneofCase.None, ended.ResultCase);
        Assert.NotNull(ended.FinishedAt);
        Assert.Equal(JobState.Cancelled, (await _client.CancelJobAsync(job.Id)).State);
        Assert.NotEqual(RelationVectorSource.Trained, (await _client.GetRelationAsync(c, "mother_of")).VectorSource);

        Job next = await _client.WaitForJobAsync((await _client.MineAsync(new MineRequest { Collection = c })).Id);
        Assert.Equal(JobState.Succeeded, next.State);
    }

    // Dropping a collection cancels its running job: the job's result would have nowhere to go,
    // and a new collection of the same name could not start one while it ran.
    [Fact]
    public async Task Dropping_a_collection_cancels_its_job()
    {
        string c = await FamilyCollection("dropped", dimension: 8);
        Job job = await StartEndlessTrainingAsync(c);
        Assert.True(await _client.DropCollectionAsync(c));
        // Bounded: a job left running trains for ten million epochs.
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Assert.Equal(JobState.Cancelled, (await _client.WaitForJobAsync(job.Id, cancellationToken: bound.Token)).State);
        await _client.CreateCollectionAsync(c, 8);
        await _client.AddFactsAsync(c, FamilyFacts());
        Job mined = await _client.WaitForJobAsync((await _client.MineAsync(new MineRequest { Collection = c })).Id);
        Assert.Equal(JobState.Succeeded, mined.State);

        // What was mined from a collection is not applied to another of its name, created after a drop.
        Assert.True(await _client.DropCollectionAsync(c));
        await _client.CreateCollectionAsync(c, 8);
        await Refused(StatusCode.FailedPrecondition, "mine_job_id", () => _client.ApplyLearnedPropertiesAsync(c, mined.Id));
    }

    [Fact]
    public async Task Bad_learning_requests_get_the_status_naming_the_field()
    {
        string c = await FamilyCollection("badlearn", dimension: 8);
        await Refused(StatusCode.NotFound, "collection", () => _client.LearnAsync(new LearnRequest { Collection = "no-such-collection" }));
        await Refused(StatusCode.InvalidArgument, "model", () => _client.LearnAsync(new LearnRequest { Collection = c, Model = (EmbeddingModel)99 }));
        await Refused(StatusCode.InvalidArgument, "max_epochs", () => _client.LearnAsync(new LearnRequest { Collection = c, MaxEpochs = 0 }));
        await Refused(StatusCode.InvalidArgument, "learning_rate", () => _client.LearnAsync(new LearnRequest { Collection = c, LearningRate = -1 }));
        await Refused(StatusCode.InvalidArgument, "validation_fraction", () => _client.LearnAsync(new LearnRequest { Collection = c, ValidationFraction = 0.7 }));
        // The default model on a collection of odd dimension: the model is what the request can change.
        string odd = await FamilyCollection("oddlearn", dimension: 7);
        await Refused(StatusCode.InvalidArgument, "model", () => _client.LearnAsync(new LearnRequest { Collection = odd }));
        await Refused(StatusCode.InvalidArgument, "min_confidence", () => _client.MineAsync(new MineRequest { Collection = c, MinConfidence = 2 }));
        await Refused(StatusCode.InvalidArgument, "test", () => _client.EvaluateAsync(c, []));
        await Refused(StatusCode.NotFound, "id", () => _client.GetJobAsync("no-such-job"));
        await Refused(StatusCode.NotFound, "id", () => _client.CancelJobAsync("no-such-job"));
        await Refused(StatusCode.NotFound, "id", async () =>
        {
            await foreach (JobProgress update in _client.WatchJobAsync("no-such-job"))
            {
                Assert.Fail($"a progress message for an unknown job: {update}");
            }
        });

        string empty = ServerFixture.NewCollection("empty");
        await _client.CreateCollectionAsync(empty, 8);
        await Refused(StatusCode.FailedPrecondition, "collection", () => _client.LearnAsync(new LearnRequest { Collection = empty }));

        // A refused start leaves no job behind and the collection free.
        Assert.Empty(await _client.ListJobsAsync(c));
        Job learn = await _client.WaitForJobAsync((await _client.LearnAsync(new LearnRequest { Collection = c, MaxEpochs = 1 })).Id);
        Assert.Equal(JobState.Succeeded, learn.State);

        await Refused(StatusCode.InvalidArgument, "mine_job_id", () => _client.ApplyLearnedPropertiesAsync(c, learn.Id));
        await Refused(StatusCode.NotFound, "mine_job_id", () => _client.ApplyLearnedPropertiesAsync(c, "no-such-job"));
        await Refused(StatusCode.InvalidArgument, "properties[0].statistics", () => _client.ApplyLearnedPropertiesAsync(
            c, [new LearnedProperty { Kind = PropertyKind.Symmetric, Relation = "mother_of" }]));
        // Counts no data can produce were stored with the rule (durably) as if mined.
        await Refused(StatusCode.InvalidArgument, "properties[0].statistics.support", () => _client.ApplyLearnedPropertiesAsync(
            c, [new LearnedProperty { Kind = PropertyKind.Symmetric, Relation = "mother_of", Statistics = new RuleStatistics { PcaConfidence = 0.5, Support = -5 } }]));
        await Refused(StatusCode.InvalidArgument, "properties[0].statistics.body_size", () => _client.ApplyLearnedPropertiesAsync(
            c, [new LearnedProperty { Kind = PropertyKind.Symmetric, Relation = "mother_of", Statistics = new RuleStatistics { PcaConfidence = 0.5, Support = 5, BodySize = 4 } }]));
        await Refused(StatusCode.InvalidArgument, "properties[0].statistics.head_coverage", () => _client.ApplyLearnedPropertiesAsync(
            c, [new LearnedProperty { Kind = PropertyKind.Symmetric, Relation = "mother_of", Statistics = new RuleStatistics { PcaConfidence = 0.5, HeadCoverage = -3 } }]));
        await Refused(StatusCode.NotFound, "properties[0].relation", () => _client.ApplyLearnedPropertiesAsync(
            c, [new LearnedProperty { Kind = PropertyKind.Symmetric, Relation = "nope", Statistics = new RuleStatistics { PcaConfidence = 0.5 } }]));
        Job mine = await _client.WaitForJobAsync((await _client.MineAsync(new MineRequest { Collection = c })).Id);
        await Refused(StatusCode.InvalidArgument, "mine_job_id", () => _client.ApplyLearnedPropertiesAsync(empty, mine.Id));
    }

    [Fact]
    public async Task Only_the_most_recent_finished_jobs_are_kept()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Jobs:MaxFinished=2"]);
        string c = await FamilyCollection(server.Client, "bounded", dimension: 4);
        var ids = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            ids.Add((await server.Client.WaitForJobAsync((await server.Client.MineAsync(new MineRequest { Collection = c })).Id)).Id);
        }

        Assert.Equal([ids[2], ids[1]], (await server.Client.ListJobsAsync()).Select(j => j.Id));
        await Refused(StatusCode.NotFound, "id", () => server.Client.GetJobAsync(ids[0]));
        await Refused(StatusCode.NotFound, "mine_job_id", () => server.Client.ApplyLearnedPropertiesAsync(c, ids[0]));
    }

    // Jobs were limited to one per collection only, so clients could run as many trainings at once
    // (each up to a GiB per step) as they had collections. And a finished job held its collection
    // object, with all its tables, for as long as the job was kept, dropped or not.
    [Fact]
    public async Task Jobs_past_the_servers_limit_are_refused_and_a_kept_job_holds_no_dropped_collection()
    {
        await using RunningServer server = await RunningServer.StartAsync(extraArgs: ["--AssocDB:Jobs:MaxRunning=1"]);
        string first = await FamilyCollection(server.Client, "running", dimension: 4);
        string second = await FamilyCollection(server.Client, "waiting", dimension: 4);
        Job training = await StartEndlessTrainingAsync(server.Client, first);

        await Refused(StatusCode.ResourceExhausted, "collection", () => server.Client.MineAsync(new MineRequest { Collection = second }));

        await server.Client.CancelJobAsync(training.Id);
        Assert.Equal(JobState.Cancelled, (await server.Client.WaitForJobAsync(training.Id)).State);
        Job mined = await server.Client.WaitForJobAsync((await server.Client.MineAsync(new MineRequest { Collection = second })).Id);
        Assert.Equal(JobState.Succeeded, mined.State);

        WeakReference dropped = WeakReferenceTo(server, second);
        Assert.True(await server.Client.DropCollectionAsync(second));
        for (int i = 0; i < 10 && dropped.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(50);
        }

        Assert.False(dropped.IsAlive, "the dropped collection is still reachable (from its finished job, or elsewhere)");
        Assert.Equal(mined.Id, (await server.Client.GetJobAsync(mined.Id)).Id);
    }

    // A server shutting down cancels its jobs, ends their watch streams with that final state and
    // takes no more calls: the client read the ended job again after the stream, so watching a job
    // through a shutdown failed with UNAVAILABLE ("Error connecting to subchannel") instead.
    [Fact]
    public async Task A_job_watched_through_a_server_shutdown_ends_cancelled()
    {
        var streaming = new TaskCompletionSource();
        AssocDbClient? watcher = null; // its own connection, open until after the server stopped
        try
        {
            Task<Job> watch;
            Job training;
            await using (RunningServer server = await RunningServer.StartAsync())
            {
                training = await StartEndlessTrainingAsync(server.Client, await FamilyCollection(server.Client, "shutdown", dimension: 4));
                watcher = new AssocDbClient(server.Address);
                watch = watcher.WaitForJobAsync(training.Id, _ => streaming.TrySetResult());
                await streaming.Task;
            }

            Job ended = await watch;
            Assert.Equal((training.Id, JobState.Cancelled), (ended.Id, ended.State));
        }
        finally
        {
            watcher?.Dispose();
        }
    }

    // Not inlined, so no local of this frame keeps the collection reachable.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference WeakReferenceTo(RunningServer server, string collection) =>
        new(AssocServer.Database(server.App).GetCollection(collection).Value);

    private Task<Job> StartEndlessTrainingAsync(string collection) => StartEndlessTrainingAsync(_client, collection);

    /// <summary>Starts a training job that runs until cancelled and returns once its first epoch ended.
    /// No validation split, so no early stopping (with one, training on these few facts could stop
    /// before the test acts on the job).</summary>
    private static async Task<Job> StartEndlessTrainingAsync(AssocDbClient client, string collection)
    {
        Job job = await client.LearnAsync(new LearnRequest { Collection = collection, Model = EmbeddingModel.Transe, MaxEpochs = 10_000_000, BatchSize = 8, ValidationFraction = 0 });
        await foreach (JobProgress update in client.WatchJobAsync(job.Id))
        {
            if (update.Epoch >= 1)
            {
                break;
            }
        }

        return job;
    }

    private Task<string> FamilyCollection(string prefix, int dimension) => FamilyCollection(_client, prefix, dimension);

    private static async Task<string> FamilyCollection(AssocDbClient client, string prefix, int dimension)
    {
        string c = ServerFixture.NewCollection(prefix);
        await client.CreateCollectionAsync(c, dimension);
        await client.AddFactsAsync(c, FamilyFacts());
        return c;
    }

    private static async Task Refused(StatusCode code, string field, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<AssocDbException>(call);
        Assert.Equal((code, field), (e.StatusCode, e.Field));
    }

    private static FactInput Fact(string head, string relation, string tail) => new() { Head = head, Relation = relation, Tail = tail };

    private static FactKey Key(string head, string relation, string tail) => new() { Head = head, Relation = relation, Tail = tail };
}
