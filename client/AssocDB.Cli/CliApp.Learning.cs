using System.CommandLine;
using System.Globalization;
using AssocDB.Client;
using AssocDB.Protocol.V1;
using Duration = Google.Protobuf.WellKnownTypes.Duration;

namespace AssocDB.Cli;

/// <summary>
/// The learning commands: <c>learn</c>, <c>mine</c> and <c>evaluate</c> start a job on the server
/// and, unless <c>--detach</c>, watch it with a progress bar on stderr and print its result (Ctrl+C
/// cancels the job); <c>jobs</c> lists, shows, cancels and watches jobs. A watched job that fails or
/// is cancelled exits 1.
/// </summary>
public static partial class CliApp
{
    private static readonly Option<bool> Detach = new("--detach") { Description = "Print the job and return at once instead of watching it" };

    private static IEnumerable<Command> LearningCommands(TextWriter output, TextWriter error)
    {
        var model = new Option<EmbeddingModel>("--model")
        {
            Description = "transe or rotate (default rotate; rotate needs an even dimension)",
            HelpName = "transe|rotate",
            CustomParser = ParseEnum<EmbeddingModel>,
        };
        var epochs = new Option<int?>("--epochs") { Description = "The most epochs (default 100)" };
        var negatives = new Option<int?>("--negatives") { Description = "Negatives per fact (default 64)" };
        var batch = new Option<int?>("--batch") { Description = "Facts per step (default 512)" };
        var learningRate = new Option<double?>("--lr") { Description = "Adam learning rate (default 0.001)" };
        var timeLimit = new Option<double?>("--time-limit") { Description = "Stop after the epoch during which this many seconds have passed" };
        var validationFraction = new Option<double?>("--validation-fraction") { Description = "Share of facts held out for early stopping, in [0, 0.5) (default 0.05)" };
        var learn = new Command("learn", "Train concept and relation vectors (TransE or RotatE) on a collection's facts")
        {
            CollectionOption, model, epochs, negatives, batch, learningRate, timeLimit, validationFraction, Detach,
        };
        yield return Action(learn, output, error, async (r, client, o, ct) =>
        {
            var request = new LearnRequest { Collection = r.GetValue(CollectionOption)!, Model = r.GetValue(model) };
            if (r.GetValue(epochs) is int e)
            {
                request.MaxEpochs = e;
            }

            if (r.GetValue(negatives) is int n)
            {
                request.NegativeSamples = n;
            }

            if (r.GetValue(batch) is int b)
            {
                request.BatchSize = b;
            }

            if (r.GetValue(learningRate) is double lr)
            {
                request.LearningRate = lr;
            }

            if (r.GetValue(timeLimit) is double seconds)
            {
                if (!(Math.Abs(seconds) < TimeSpan.MaxValue.TotalSeconds))
                {
                    throw new FormatException($"--time-limit must be a finite number of seconds, got {seconds}");
                }

                request.TimeLimit = Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds));
            }

            if (r.GetValue(validationFraction) is double fraction)
            {
                request.ValidationFraction = fraction;
            }

            Job job = await StartJob(client, request.Collection, token => client.LearnAsync(request, token), error, ct);
            PrintJob(o, r.GetValue(Detach) ? job : Succeeded(await Watch(client, job, error, cancelOnInterrupt: true, ct)));
        });

        var minConfidence = new Option<double?>("--min-confidence") { Description = "Minimum confidence of an accepted rule, standard and PCA (default 0.1)" };
        var minSupport = new Option<long?>("--min-support") { Description = "Minimum support of an accepted rule (default 2)" };
        var apply = new Option<bool>("--apply") { Description = "Apply the accepted properties as learned (related answers them as kind learned)" };
        var declare = new Option<bool>("--declare") { Description = "With --apply: declare them instead" };
        var mine = new Command("mine", "Mine relation properties (symmetric, inverse, transitive, composition) with support and confidence")
        {
            CollectionOption, minConfidence, minSupport, apply, declare, Detach,
        };
        yield return Action(mine, output, error, async (r, client, o, ct) =>
        {
            if (r.GetValue(declare) && !r.GetValue(apply))
            {
                throw new FormatException("--declare needs --apply");
            }

            if (r.GetValue(apply) && r.GetValue(Detach))
            {
                throw new FormatException("--apply needs the job's result: leave out --detach");
            }

            string collection = r.GetValue(CollectionOption)!;
            var request = new MineRequest { Collection = collection };
            if (r.GetValue(minConfidence) is double confidence)
            {
                request.MinConfidence = confidence;
                request.MinPcaConfidence = confidence;
            }

            if (r.GetValue(minSupport) is long support)
            {
                request.MinSupport = support;
            }

            Job job = await StartJob(client, collection, token => client.MineAsync(request, token), error, ct);
            if (r.GetValue(Detach))
            {
                PrintJob(o, job);
                return;
            }

            job = Succeeded(await Watch(client, job, error, cancelOnInterrupt: true, ct));
            if (!r.GetValue(apply))
            {
                PrintJob(o, job);
                return;
            }

            // Scripts read one JSON document: the job and the count in one object.
            if (!o.Json)
            {
                PrintJob(o, job);
            }

            int applied = await client.ApplyLearnedPropertiesAsync(collection, job.Id, r.GetValue(declare), ct);
            string counted = r.GetValue(declare) ? "declared" : "applied";
            if (o.Json)
            {
                o.MessageWithValue("job", job, counted, applied);
            }
            else
            {
                o.Value(counted, applied);
            }
        });

        var testFile = new Option<FileInfo>("--test") { Description = "Test facts, tab-separated `head relation tail` per line", Required = true };
        var evaluate = new Command("evaluate", "Filtered link prediction on test facts: MRR and Hits@k, overall, per direction and per relation")
        {
            CollectionOption, testFile, Detach,
        };
        yield return Action(evaluate, output, error, async (r, client, o, ct) =>
        {
            List<FactKey> test = [.. File.ReadLines(r.GetValue(testFile)!.FullName).Where(line => line.Length > 0).Select(line => ParseFactLine(line, null))
                .Select(f => new FactKey { Head = f.Head, Relation = f.Relation, Tail = f.Tail })];
            string collection = r.GetValue(CollectionOption)!;
            Job job = await StartJob(client, collection, token => client.EvaluateAsync(collection, test, token), error, ct);
            PrintJob(o, r.GetValue(Detach) ? job : Succeeded(await Watch(client, job, error, cancelOnInterrupt: true, ct)));
        });

        yield return JobCommands(output, error);
    }

    private static Command JobCommands(TextWriter output, TextWriter error)
    {
        var id = new Argument<string>("id") { Description = "Job id" };
        var onlyCollection = new Option<string?>("--collection", "-c") { Description = "Only this collection's jobs" };

        var list = new Command("list", "List running and recently finished jobs, newest first") { onlyCollection };
        Action(list, output, error, async (r, client, o, ct) =>
            o.List(await client.ListJobsAsync(r.GetValue(onlyCollection), ct), ["id", "kind", "collection", "state", "done", "elapsed"],
                j => [j.Id, KindName(j.Kind), j.Collection, ProgressBar.State(j.State), Percent(j.Progress.FractionDone), Seconds(j.Progress.ElapsedSeconds)]));
        var get = new Command("get", "Show a job and its result") { id };
        Action(get, output, error, async (r, client, o, ct) => PrintJob(o, await client.GetJobAsync(r.GetValue(id)!, ct)));
        var cancel = new Command("cancel", "Ask a running job to stop") { id };
        Action(cancel, output, error, async (r, client, o, ct) => PrintJob(o, await client.CancelJobAsync(r.GetValue(id)!, ct)));
        var watch = new Command("watch", "Watch a job's progress until it ends, then show it (Ctrl+C stops watching only)") { id };
        Action(watch, output, error, async (r, client, o, ct) =>
            PrintJob(o, Succeeded(await Watch(client, await client.GetJobAsync(r.GetValue(id)!, ct), error, cancelOnInterrupt: false, ct))));
        return new Command("jobs", "List, show, cancel and watch learning jobs") { list, get, cancel, watch };
    }

    /// <summary>
    /// Runs the call that starts a job. Ctrl+C does not abandon it: the server may have started the
    /// job already, its answer on the way, and a tool that stopped listening never learnt the id of
    /// a job left running (holding the collection; a learn writes every vector at its end). The call
    /// is let finish, within its deadline and the tool's grace after Ctrl+C, and the job it started
    /// is then cancelled.
    /// </summary>
    private static async Task<Job> StartJob(
        AssocDbClient client, string collection, Func<CancellationToken, Task<Job>> start, TextWriter error, CancellationToken interrupt)
    {
        Job job;
        using (interrupt.Register(() => error.WriteLine(
            $"interrupted: waiting for the server's answer to cancel the job it starts (should the tool end first, `assocdb jobs list -c {collection}` shows it)")))
        {
            job = await start(CancellationToken.None);
        }

        if (interrupt.IsCancellationRequested)
        {
            await CancelJob(client, job, error);
            interrupt.ThrowIfCancellationRequested();
        }

        return job;
    }

    private static async Task CancelJob(AssocDbClient client, Job job, TextWriter error)
    {
        await error.WriteLineAsync($"cancelling job {job.Id}");
        await client.CancelJobAsync(job.Id, CancellationToken.None);
    }

    /// <summary>Draws the job's progress until it ends and returns it ended. When interrupted, the
    /// job is cancelled too if <paramref name="cancelOnInterrupt"/>.</summary>
    private static async Task<Job> Watch(AssocDbClient client, Job job, TextWriter error, bool cancelOnInterrupt, CancellationToken cancellationToken)
    {
        var bar = new ProgressBar(error);
        try
        {
            return await client.WaitForJobAsync(job.Id, bar.Update, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && cancelOnInterrupt)
        {
            bar.Finish();
            await CancelJob(client, job, error);
            throw;
        }
        finally
        {
            bar.Finish();
        }
    }

    /// <summary>The job when it succeeded; when it failed or was cancelled the command ends with exit
    /// code 1 and the reason on stderr.</summary>
    private static Job Succeeded(Job job) => job.State is JobState.Failed or JobState.Cancelled ? throw new JobEndedException(job) : job;

    /// <summary>A job and its result: JSON, or a table of its fields then one of its result.</summary>
    private static void PrintJob(Output o, Job job)
    {
        if (!o.WroteJson(job))
        {
            o.Message(job, JobFields(job));
            switch (job.ResultCase)
            {
                case Job.ResultOneofCase.Training:
                    o.Blank();
                    PrintTraining(o, job.Training);
                    break;
                case Job.ResultOneofCase.Mining:
                    o.Blank();
                    o.List(job.Mining.Accepted, ["rule", "support", "confidence", "pca_confidence", "head_coverage"],
                        p => [p.Rule, $"{p.Statistics.Support}", Output.Number(p.Statistics.Confidence), Output.Number(p.Statistics.PcaConfidence), Output.Number(p.Statistics.HeadCoverage)]);
                    if (job.Mining.Truncated)
                    {
                        o.Value("truncated", $"(the best {job.Mining.Accepted.Count} of {job.Mining.AcceptedCount} accepted rules, cut to the server's limits: `assocdb jobs get {job.Id}` lists every one it keeps)");
                    }

                    break;
                case Job.ResultOneofCase.Evaluation:
                    o.Blank();
                    PrintEvaluation(o, job.Evaluation);
                    break;
            }
        }
    }

    private static (string, string)[] JobFields(Job job)
    {
        List<(string, string)> fields =
        [
            ("id", job.Id), ("kind", KindName(job.Kind)), ("collection", job.Collection), ("state", ProgressBar.State(job.State)),
            ("progress", ProgressBar.Render(job.Progress)), ("started_at", job.StartedAt?.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture) ?? ""),
        ];
        if (job.Error is { } e)
        {
            fields.Add(("error", $"{(Grpc.Core.StatusCode)e.Code}: {e.Message}"));
        }

        return [.. fields];
    }

    private static void PrintTraining(Output o, TrainingReport t) => o.Message(
        t,
        ("model", t.Model == EmbeddingModel.Transe ? "TransE" : "RotatE"),
        ("epochs_run", $"{t.EpochsRun}"),
        ("best_epoch", $"{t.BestEpoch}"),
        ("best_validation_mrr", t.HasBestValidationMrr ? Output.Number(t.BestValidationMrr) : "-"),
        ("stop_reason", t.StopReason.ToString().ToLowerInvariant()),
        ("triples_per_second", Output.Number(Math.Round(t.TriplesPerSecond))),
        ("elapsed_seconds", Output.Number(t.ElapsedSeconds)),
        ("concepts_written", $"{t.ConceptsWritten}"),
        ("relations_written", $"{t.RelationsWritten}"));

    private static void PrintEvaluation(Output o, EvaluationReport e)
    {
        List<(string Label, RankingMetrics Metrics)> rows = [("all (both directions)", e.Overall), ("tail (h, r, ?)", e.TailPrediction), ("head (?, r, t)", e.HeadPrediction)];
        rows.AddRange(e.PerRelation.Select(r => (r.Relation, r.Metrics)));
        o.Rows(["", "queries", "MRR", "MR", "H@1", "H@3", "H@10"], rows.Select(r => new[]
        {
            r.Label, $"{r.Metrics.Queries}", Fixed(r.Metrics.Mrr, 3), Fixed(r.Metrics.MeanRank, 1), Fixed(r.Metrics.HitsAt1, 3), Fixed(r.Metrics.HitsAt3, 3), Fixed(r.Metrics.HitsAt10, 3),
        }));
        if (e.Skipped > 0)
        {
            o.Blank();
            o.Value("skipped", $"{e.Skipped} test facts (unknown concepts or relations, or relations without vectors)");
        }
    }

    private static string KindName(JobKind kind) => kind.ToString().ToLowerInvariant();

    private static string Percent(double fraction) => (fraction * 100).ToString("0", CultureInfo.InvariantCulture) + "%";

    private static string Seconds(double seconds) => seconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";

    private static string Fixed(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>A watched job failed or was cancelled.</summary>
    private sealed class JobEndedException(Job job)
        : Exception(job.State == JobState.Cancelled ? $"job {job.Id} was cancelled" : $"job {job.Id} failed: {(Grpc.Core.StatusCode)job.Error.Code}: {job.Error.Message}");
}
