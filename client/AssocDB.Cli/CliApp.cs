using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using AssocDB.Client;
using AssocDB.Protocol.V1;

namespace AssocDB.Cli;

/// <summary>
/// The <c>assocdb</c> commands. Each parses its arguments, makes one or a few client calls and
/// prints the result: a table by default, JSON with <c>--json</c>. Exit codes: 0 success, 1 the
/// server refused or failed the call (status and field on stderr), 2 bad command line, 130
/// interrupted (Ctrl+C or SIGTERM; a watched job is cancelled first); the long-running
/// <c>ingest</c> has its own (see <see cref="IngestCommand"/>).
/// </summary>
public static partial class CliApp
{
    private const string ServerOption = "--server";
    private const string ApiKeyOption = "--api-key";

    // The environment's key travels in a hidden option: as the visible option's default it was printed
    // in every help screen (and help follows every command-line mistake, into CI logs).
    private const string EnvironmentApiKeyOption = "--api-key-from-environment";

    /// <summary>Exit code of a command line that does not parse (ingest has its own table).</summary>
    private const int BadCommandLine = 2;

    /// <summary>How long a command may take to wind down after Ctrl+C or SIGTERM (learn, mine and
    /// evaluate cancel their job on the server; ingest writes its rejects and summary) before the
    /// process ends anyway.</summary>
    private static readonly TimeSpan InterruptGrace = TimeSpan.FromSeconds(5);

    internal static readonly Option<bool> JsonOutput = new("--json") { Description = "Print JSON instead of tables", Recursive = true };

    /// <summary>The deadline of each call when <c>--timeout</c> is not given. Without one, a command
    /// waited for a server that had stopped answering until the connection broke, which may be never.</summary>
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The longest <c>--timeout</c>: a deadline that far off is no deadline.</summary>
    private static readonly TimeSpan LongestTimeout = TimeSpan.FromDays(1);

    private static readonly Option<TimeSpan?> TimeoutOption = new("--timeout")
    {
        Description = "How long a call waits for the server's answer, like 30s (the default; checkpoint: no limit), 500ms or 2m; 0 for no limit. "
            + "Streams (ingest, watching a job) are not cut by it",
        HelpName = "DURATION",
        Recursive = true,
        CustomParser = ParseDuration,
    };

    private static readonly Option<string> CollectionOption = new("--collection", "-c") { Description = "Collection name", Required = true };

    /// <summary>Runs the tool; returns the exit code.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default) =>
        RunAsync(args, output, error, Environment.GetEnvironmentVariable, cancellationToken);

    /// <summary>Runs the tool with <paramref name="environment"/> as the source of the
    /// <c>ASSOCDB_SERVER</c> and <c>ASSOCDB_API_KEY</c> defaults; returns the exit code.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Where results go.</param>
    /// <param name="error">Where errors and progress go.</param>
    /// <param name="environment">Looks up an environment variable (null when unset); tests pass their
    /// own, since the process environment is shared by everything running in the process.</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    public static async Task<int> RunAsync(
        string[] args, TextWriter output, TextWriter error, Func<string, string?> environment, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(environment);
        // The tool's numbers are for scripts as much as people: read and written the same in every
        // locale. System.CommandLine reads float options in the current culture, so under de-DE
        // (where '.' groups thousands) --weight 0.5 stored 5. Set for this call's flow only.
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        ParseResult parsed = CreateRoot(output, error, environment).Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // The documented code for a bad command line (the parser's own action returns 1, the code
            // for a refused call), with the errors and where help is, but not the whole help screen.
            foreach (ParseError parseError in parsed.Errors)
            {
                await error.WriteLineAsync($"error: {parseError.Message}");
            }

            Command command = parsed.CommandResult.Command;
            await error.WriteLineAsync("see: " + string.Join(' ', ["assocdb", .. CommandPath(parsed.CommandResult), "--help"]));
            return command.Name == "ingest" ? IngestCommand.Usage : BadCommandLine;
        }

        // Without a termination timeout System.CommandLine installs no signal handler: Ctrl+C ended
        // the process at once, and the actions' cancellation token never fired.
        var invocation = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = InterruptGrace };
        return await parsed.InvokeAsync(invocation, cancellationToken);
    }

    /// <summary>The tool's command tree, with its actions bound to <paramref name="output"/> and
    /// <paramref name="error"/> and the defaults of <paramref name="environment"/>.</summary>
    internal static RootCommand CreateRoot(TextWriter output, TextWriter error, Func<string, string?> environment)
    {
        var root = new RootCommand("AssocDB command-line client: collections, concepts, relations, facts, queries, learning, administration.");
        // Built per run, since their defaults come from this run's environment.
        root.Options.Add(new Option<string>(ServerOption)
        {
            Description = "Server address (env ASSOCDB_SERVER)",
            Recursive = true,
            DefaultValueFactory = _ => environment("ASSOCDB_SERVER") ?? "http://127.0.0.1:50051",
        });
        root.Options.Add(new Option<string?>(ApiKeyOption)
        {
            Description = "API key, sent as a Bearer token (default: env ASSOCDB_API_KEY)",
            Recursive = true,
        });
        root.Options.Add(new Option<string?>(EnvironmentApiKeyOption)
        {
            Hidden = true,
            Recursive = true,
            DefaultValueFactory = _ => environment("ASSOCDB_API_KEY"),
        });
        root.Options.Add(JsonOutput);
        root.Options.Add(TimeoutOption);
        root.Subcommands.Add(CollectionCommands(output, error));
        root.Subcommands.Add(ConceptCommands(output, error));
        root.Subcommands.Add(RelationCommands(output, error));
        root.Subcommands.Add(FactCommands(output, error));
        root.Subcommands.Add(IngestCommand.Create(output, error));
        foreach (Command command in QueryCommands(output, error).Concat(LearningCommands(output, error)))
        {
            root.Subcommands.Add(command);
        }

        root.Subcommands.Add(Action(new Command("stats", "Server and collection statistics"), output, error, async (r, client, o, ct) =>
        {
            GetStatsResponse stats = await client.GetStatsAsync(ct);
            CollectionInfo[] unavailable = [.. stats.Collections.Where(c => c.State == CollectionState.Unavailable)];
            static string Unavailable(CollectionInfo c) => $"{(c.Name.Length > 0 ? $"{c.Name} in {c.Folder}" : $"{c.Folder} (name unknown)")}: {c.UnavailableReason}";
            o.Message(stats,
            [
                ("version", stats.Version), ("device", stats.Device), ("uptime_seconds", Output.Number(stats.UptimeSeconds)),
                ("collections", stats.Collections.Count.ToString(CultureInfo.InvariantCulture)),
                ("unavailable_collections", unavailable.Length.ToString(CultureInfo.InvariantCulture)),
                .. unavailable.Select(c => ("unavailable", Unavailable(c))),
                ("total_concepts", stats.TotalConcepts.ToString(CultureInfo.InvariantCulture)),
                ("total_facts", stats.TotalFacts.ToString(CultureInfo.InvariantCulture)),
                ("matrix_bytes", stats.MatrixBytes.ToString(CultureInfo.InvariantCulture)),
            ]);
        }));

        var checkpointCollection = new Option<string?>("--collection", "-c") { Description = "Only this collection" };
        var checkpoint = new Command("checkpoint", "Checkpoint one collection or all") { checkpointCollection };
        root.Subcommands.Add(Action(checkpoint, output, error, async (r, client, o, ct) =>
        {
            double seconds = await client.CheckpointAsync(r.GetValue(checkpointCollection), ct);
            o.Value("elapsed_seconds", o.Json ? seconds : Output.Number(seconds));
        }));

        return root;
    }

    /// <summary>The subcommand names from the root down to <paramref name="result"/>'s command.</summary>
    private static IEnumerable<string> CommandPath(CommandResult result)
    {
        var names = new Stack<string>();
        for (SymbolResult? node = result; node is CommandResult { Parent: not null } command; node = command.Parent)
        {
            names.Push(command.Command.Name);
        }

        return names;
    }

    private static Command CollectionCommands(TextWriter output, TextWriter error)
    {
        var name = new Argument<string>("name") { Description = "Collection name" };
        var dimension = new Option<int>("--dim", "-d") { Description = "Vector dimension", Required = true };
        var metric = new Option<Metric>("--metric")
        {
            Description = "cosine, dot or l2",
            HelpName = "cosine|dot|l2",
            DefaultValueFactory = _ => Metric.Cosine,
            CustomParser = ParseEnum<Metric>,
        };
        var precision = new Option<StoragePrecision>("--precision")
        {
            Description = "float32, or a float16 or bfloat16 search copy beside it (more memory; faster only on CPUs without AVX-512)",
            HelpName = "float32|float16|bfloat16",
            DefaultValueFactory = _ => StoragePrecision.Float32,
            CustomParser = ParseEnum<StoragePrecision>,
        };
        string[] headers = ["name", "dimension", "metric", "precision", "concepts", "relations", "facts", "state", "reason"];
        static string[] Row(CollectionInfo c)
        {
            if (c.State != CollectionState.Unavailable)
            {
                return [c.Name, $"{c.Dimension}", $"{c.Metric}", $"{c.Precision}", $"{c.ConceptCount}", $"{c.RelationCount}", $"{c.FactCount}", "available", ""];
            }

            // An unavailable collection's counts are unknown, and so are its name and definition when
            // its manifest is unreadable (dimension 0): its folder stands for the name.
            string Defined(object value) => c.Dimension > 0 ? $"{value}" : "?";
            return [c.Name.Length > 0 ? c.Name : $"({c.Folder})", Defined(c.Dimension), Defined(c.Metric), Defined(c.Precision), "?", "?", "?", "unavailable", c.UnavailableReason];
        }

        var create = new Command("create", "Create a collection") { name, dimension, metric, precision };
        Action(create, output, error, async (r, client, o, ct) =>
            o.List([await client.CreateCollectionAsync(r.GetValue(name)!, r.GetValue(dimension), r.GetValue(metric), r.GetValue(precision), ct)], headers, Row));
        var list = Action(new Command("list", "List collections"), output, error, async (r, client, o, ct) =>
            o.List(await client.ListCollectionsAsync(ct), headers, Row));
        var describe = new Command("describe", "Describe a collection") { name };
        Action(describe, output, error, async (r, client, o, ct) => o.List([await client.DescribeCollectionAsync(r.GetValue(name)!, ct)], headers, Row));
        var drop = new Command("drop", "Drop a collection and everything in it") { name };
        Action(drop, output, error, async (r, client, o, ct) => o.Value("dropped", await client.DropCollectionAsync(r.GetValue(name)!, ct)));
        return new Command("collection", "Create, list, describe and drop collections") { create, list, describe, drop };
    }

    private static Command ConceptCommands(TextWriter output, TextWriter error)
    {
        var name = new Argument<string>("name") { Description = "Concept name" };
        var names = new Argument<string[]>("names") { Description = "Concept names", Arity = ArgumentArity.OneOrMore };
        var vector = VectorOption("The concept's vector (unset: keep it, or derive one from the name)");
        var metadata = new Option<string[]>("--meta") { Description = "Metadata key=value (repeatable)" };

        var upsert = new Command("upsert", "Create or update a concept") { CollectionOption, name, vector, metadata };
        Action(upsert, output, error, async (r, client, o, ct) =>
        {
            var concept = new ConceptInput { Name = r.GetValue(name)! };
            if (r.GetValue(vector) is { Length: > 0 } values)
            {
                concept.Vector = Vectors.Of(values);
            }

            foreach ((string key, string value) in Pairs(r.GetValue(metadata)))
            {
                concept.Metadata[key] = value;
            }

            PrintSummary(o, await client.UpsertConceptsAsync(r.GetValue(CollectionOption)!, [concept], ct));
        });
        var get = new Command("get", "Show a concept") { CollectionOption, name };
        Action(get, output, error, async (r, client, o, ct) =>
        {
            ConceptInfo c = await client.GetConceptAsync(r.GetValue(CollectionOption)!, r.GetValue(name)!, ct);
            o.Message(c, ("id", $"{c.Id}"), ("name", c.Name), ("degree", $"{c.Degree}"),
                ("metadata", string.Join(", ", c.Metadata.Select(p => $"{p.Key}={p.Value}"))),
                // Shortest round-trip, not rounded like scores: a vector printed can be given back to --vector.
                ("vector", string.Join(" ", c.Vector.Values.Select(v => v.ToString(CultureInfo.InvariantCulture)))));
        });
        var missingOk = new Option<bool>("--missing-ok") { Description = "Count names that do not exist as unchanged instead of refusing the batch (for a retry)" };
        var delete = new Command("delete", "Delete concepts and their facts") { CollectionOption, names, missingOk };
        Action(delete, output, error, async (r, client, o, ct) =>
            PrintSummary(o, await client.DeleteConceptsAsync(r.GetValue(CollectionOption)!, r.GetValue(names)!, r.GetValue(missingOk), ct)));
        return new Command("concept", "Create, show and delete concepts") { upsert, get, delete };
    }

    private static Command RelationCommands(TextWriter output, TextWriter error)
    {
        var name = new Argument<string>("name") { Description = "Relation name" };
        var symmetric = new Option<bool?>("--symmetric") { Description = "a R b implies b R a (true/false)" };
        var transitive = new Option<bool?>("--transitive") { Description = "a R b and b R c imply a R c (true/false)" };
        var inverse = new Option<string?>("--inverse-of") { Description = "The inverse relation" };
        var compose = new Option<string[]>("--compose")
        {
            Description = "Composition rule FIRST,SECOND: a FIRST b and b SECOND c imply a R c (repeatable)",
        };
        var vector = VectorOption("The relation's vector");
        string[] headers = ["name", "symmetric", "transitive", "inverse_of", "compositions", "facts", "vector", "learned"];
        static string[] Row(RelationInfo r) =>
        [
            r.Name, $"{r.Symmetric}", $"{r.Transitive}", r.InverseOf, string.Join(" ", r.Compositions.Select(c => $"{c.First}∘{c.Second}")), $"{r.FactCount}",
            VectorSourceName(r.VectorSource), string.Join("; ", r.Learned.Select(p => $"{p.Rule} ({Output.Number(p.Statistics.PcaConfidence)})")),
        ];

        var define = new Command("define", "Create a relation or update its properties") { CollectionOption, name, symmetric, transitive, inverse, compose, vector };
        Action(define, output, error, async (r, client, o, ct) =>
        {
            string[]? rules = r.GetValue(compose);
            IEnumerable<(string, string)>? compositions = rules is { Length: > 0 } ? rules.Select(ParseRule).ToList() : null;
            RelationInfo info = await client.DefineRelationAsync(
                r.GetValue(CollectionOption)!, r.GetValue(name)!, r.GetValue(symmetric), r.GetValue(transitive),
                r.GetValue(inverse), compositions, r.GetValue(vector) is { Length: > 0 } v ? v : null, ct);
            o.List([info], headers, Row);
        });
        var get = new Command("get", "Show a relation") { CollectionOption, name };
        Action(get, output, error, async (r, client, o, ct) => o.List([await client.GetRelationAsync(r.GetValue(CollectionOption)!, r.GetValue(name)!, ct)], headers, Row));
        var list = new Command("list", "List a collection's relations") { CollectionOption };
        Action(list, output, error, async (r, client, o, ct) => o.List(await client.ListRelationsAsync(r.GetValue(CollectionOption)!, ct), headers, Row));
        return new Command("relation", "Define, show and list relations") { define, get, list };
    }

    private static Command FactCommands(TextWriter output, TextWriter error)
    {
        var head = new Argument<string?>("head") { Description = "Head concept", Arity = ArgumentArity.ZeroOrOne };
        var relation = new Argument<string?>("relation") { Description = "Relation", Arity = ArgumentArity.ZeroOrOne };
        var tail = new Argument<string?>("tail") { Description = "Tail concept", Arity = ArgumentArity.ZeroOrOne };
        var weight = new Option<float?>("--weight") { Description = "Edge weight (default 1; with --file, for lines without one)" };
        var file = new Option<FileInfo?>("--file") { Description = "Tab-separated facts, one `head relation tail [weight]` per line, sent in batches" };
        var batch = new Option<int>("--batch") { Description = "Facts per call with --file", DefaultValueFactory = _ => 1000 };

        var add = new Command("add", "Add a fact, or every fact of a file") { CollectionOption, head, relation, tail, weight, file, batch };
        IngestCommand.AtLeast(batch, 1);
        add.Validators.Add(result =>
        {
            // Both given, one of them would be dropped without a word.
            if (result.GetValue(file) is not null && result.GetValue(head) is not null)
            {
                result.AddError("give HEAD RELATION TAIL or --file, not both");
            }
        });
        Action(add, output, error, async (r, client, o, ct) =>
        {
            string collection = r.GetValue(CollectionOption)!;
            IEnumerable<FactInput> facts = r.GetValue(file) is FileInfo source
                ? File.ReadLines(source.FullName).Where(line => line.Length > 0).Select(line => ParseFactLine(line, r.GetValue(weight)))
                : [Triple(r.GetValue(head), r.GetValue(relation), r.GetValue(tail), r.GetValue(weight))];
            var total = new WriteSummary();
            long stored = 0;
            try
            {
                foreach (FactInput[] chunk in facts.Chunk(r.GetValue(batch)))
                {
                    WriteSummary s = await client.AddFactsAsync(collection, chunk, ct);
                    total.Applied += s.Applied;
                    total.Unchanged += s.Unchanged;
                    total.CreatedConcepts += s.CreatedConcepts;
                    total.CreatedRelations += s.CreatedRelations;
                    stored += chunk.Length;
                }
            }
            catch (Exception e) when (stored > 0 && e is AssocDbException or FormatException or IOException or OperationCanceledException)
            {
                // The batches before the failure are stored: say so, or a user is left to guess
                // whether a rerun would store them twice.
                await error.WriteLineAsync($"the file's first {stored} facts were stored before this error; rerunning the command is safe (stored facts count as unchanged)");
                throw;
            }

            PrintSummary(o, total);
        });
        var remove = new Command("remove", "Remove a fact") { CollectionOption, head, relation, tail };
        Action(remove, output, error, async (r, client, o, ct) =>
        {
            FactInput fact = Triple(r.GetValue(head), r.GetValue(relation), r.GetValue(tail), null);
            PrintSummary(o, await client.RemoveFactsAsync(r.GetValue(CollectionOption)!, [new FactKey { Head = fact.Head, Relation = fact.Relation, Tail = fact.Tail }], ct));
        });
        return new Command("fact", "Add and remove facts") { add, remove };
    }

    private static IEnumerable<Command> QueryCommands(TextWriter output, TextWriter error)
    {
        var concept = new Argument<string>("concept") { Description = "Concept" };
        var relationArg = new Argument<string>("relation") { Description = "Relation" };
        var depth = new Option<int?>("--depth") { Description = "How deeply rules may nest in a proof" };
        var limit = new Option<int?>("--limit") { Description = "Most answers" };
        var k = new Option<int?>("-k", "--k") { Description = "How many results" };

        var related = new Command("related", "Answers to `concept relation ?`, stored and derived, with proofs") { CollectionOption, concept, relationArg, depth, limit };
        yield return Action(related, output, error, async (r, client, o, ct) =>
        {
            RelatedResponse result = await client.RelatedAsync(r.GetValue(CollectionOption)!, r.GetValue(concept)!, r.GetValue(relationArg)!, r.GetValue(depth), r.GetValue(limit), ct);
            if (o.WroteJson(result))
            {
                return;
            }

            o.List(result.Answers, ["concept", "kind", "score", "proof"], a => [a.Concept, Kind(a.Kind), Output.Number(a.Score), ProofText(a.Proof)]);
            if (result.Truncated)
            {
                output.WriteLine("(there may be more answers: the proof search reached its work bound, keeping every answer of the depths it completed, or --limit cut the list)");
            }
        });

        var onlyRelation = new Option<string?>("--relation") { Description = "Only edges of this relation" };
        var pageToken = new Option<string?>("--page-token") { Description = "Read on from where the previous page ended (the token it printed)" };
        var neighbors = new Command("neighbors", "Stored edges touching a concept, both directions, a page at a time") { CollectionOption, concept, onlyRelation, limit, pageToken };
        yield return Action(neighbors, output, error, async (r, client, o, ct) =>
        {
            NeighborsResponse page = await client.NeighborsAsync(
                r.GetValue(CollectionOption)!, r.GetValue(concept)!, r.GetValue(onlyRelation), r.GetValue(limit), r.GetValue(pageToken), ct);
            if (o.WroteJson(page))
            {
                return;
            }

            o.List(page.Edges, ["direction", "head", "relation", "tail", "weight"],
                e => [e.Direction == EdgeDirection.Outgoing ? "out" : "in", e.Fact.Head, e.Fact.Relation, e.Fact.Tail, Output.Number(e.Weight)]);
            if (page.NextPageToken.Length > 0)
            {
                output.WriteLine($"(more edges follow: add --page-token {page.NextPageToken})");
            }
        });

        var queryConcept = new Option<string?>("--concept") { Description = "Query from this concept's vector" };
        var vector = VectorOption("Query vector");
        var plus = new Option<string[]>("--plus") { Description = "Add a relation's vector (c + r: what is r of c?; repeatable)" };
        var minus = new Option<string[]>("--minus") { Description = "Subtract a relation's vector (c − r: whose r is c?; repeatable)" };
        var includeSelf = new Option<bool>("--include-self") { Description = "Keep the query concept in its results" };
        var search = new Command("search", "Nearest concepts to a vector or a concept ± relations") { CollectionOption, queryConcept, vector, plus, minus, k, includeSelf };
        yield return Action(search, output, error, async (r, client, o, ct) =>
        {
            SearchQuery query = r.GetValue(vector) is { Length: > 0 } values ? Queries.Vector(values) : Queries.Concept(r.GetValue(queryConcept) ?? "", r.GetValue(plus), r.GetValue(minus));
            if (query.InputCase == SearchQuery.InputOneofCase.Vector)
            {
                query.Plus.AddRange(r.GetValue(plus) ?? []);
                query.Minus.AddRange(r.GetValue(minus) ?? []);
            }

            ReplyList<IReadOnlyList<SearchHit>> results = await client.SearchAsync(
                r.GetValue(CollectionOption)!, [query], r.GetValue(k) ?? 10, r.GetValue(includeSelf), cancellationToken: ct);
            // JSON is the reply, as for the other queries, so that it carries the truncated flag.
            if (o.WroteJson(new SearchResponse { Results = { new SearchResult { Hits = { results[0] } } }, Truncated = results.Truncated }))
            {
                return;
            }

            PrintHits(o, results[0]);
            if (results.Truncated)
            {
                output.WriteLine($"(fewer hits than asked for: the reply was cut to the server's message size limit, keeping the best {results[0].Count}; ask for a smaller -k)");
            }
        });

        var a = new Argument<string>("a") { Description = "First concept" };
        var b = new Argument<string>("b") { Description = "Second concept" };
        var relate = new Command("relate", "Relations between a and b: graph (with proofs) and vector reading") { CollectionOption, a, b, k, depth };
        yield return Action(relate, output, error, async (r, client, o, ct) =>
        {
            RelateResponse result = await client.RelateAsync(r.GetValue(CollectionOption)!, r.GetValue(a)!, r.GetValue(b)!, r.GetValue(k), r.GetValue(depth), ct);
            if (o.WroteJson(result))
            {
                return;
            }

            o.List(result.Graph, ["relation", "kind", "score", "proof"], g => [g.Relation, Kind(g.Kind), Output.Number(g.Score), ProofText(g.Proof)]);
            if (result.Truncated)
            {
                output.WriteLine("(relations may be missing: the proof searches reached their work bound; ask with a smaller --depth)");
            }

            output.WriteLine();
            o.List(result.VectorReading, ["relation (vector reading)", "cosine"], v => [v.Relation, Output.Number(v.Score)]);
        });

        var direction = new Option<RecallDirection>("--direction")
        {
            Description = "forward, reverse or auto",
            HelpName = "forward|reverse|auto",
            DefaultValueFactory = _ => RecallDirection.Auto,
            CustomParser = ParseEnum<RecallDirection>,
        };
        var beta = new Option<float?>("--beta") { Description = "Softmax sharpness β (default 32)" };
        var recall = new Command("recall", "Read a relation's facts as a key–value memory") { CollectionOption, relationArg, queryConcept, vector, direction, beta, k };
        yield return Action(recall, output, error, async (r, client, o, ct) =>
        {
            string collection = r.GetValue(CollectionOption)!, relation = r.GetValue(relationArg)!;
            RecallResponse result = r.GetValue(vector) is { Length: > 0 } values
                ? await client.RecallAsync(collection, relation, values, r.GetValue(direction), r.GetValue(beta), r.GetValue(k), ct)
                : await client.RecallAsync(collection, relation, r.GetValue(queryConcept) ?? "", r.GetValue(direction), r.GetValue(beta), r.GetValue(k), ct);
            if (o.WroteJson(result))
            {
                return;
            }

            output.WriteLine($"forward weight α = {Output.Number(result.ForwardWeight)}");
            PrintHits(o, result.Nearest);
        });
    }

    private static Command Action(
        Command command, TextWriter output, TextWriter error, Func<ParseResult, AssocDbClient, Output, CancellationToken, Task> body)
    {
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            try
            {
                using AssocDbClient client = Connect(result);
                await body(result, client, new Output(output, result.GetValue(JsonOutput)), cancellationToken);
                return 0;
            }
            catch (AssocDbException e)
            {
                await error.WriteLineAsync($"error: {e.StatusCode}: {e.Message}");
                return 1;
            }
            catch (JobEndedException e)
            {
                await error.WriteLineAsync($"error: {e.Message}");
                return 1;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Ctrl+C or SIGTERM: System.CommandLine's own handling returned 1, the code of a
                // refused call, and said nothing.
                await error.WriteLineAsync("error: interrupted");
                return IngestCommand.Interrupted;
            }
            // A directory given as a file to read is UnauthorizedAccessException on Linux.
            catch (Exception e) when (e is FormatException or UriFormatException or IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"error: {e.Message}");
                return BadCommandLine;
            }
        });
        return command;
    }

    /// <summary>A client for the server and API key of the command line (or their environment
    /// defaults). Throws <see cref="FormatException"/> for a server that is not an http(s) address
    /// (<c>localhost:50051</c> failed deep in the channel, with a stack trace).</summary>
    internal static AssocDbClient Connect(ParseResult result)
    {
        string server = result.GetValue<string>(ServerOption)!;
        if (!Uri.TryCreate(server, UriKind.Absolute, out Uri? address) || address.Scheme is not ("http" or "https"))
        {
            throw new FormatException($"--server must be an http:// or https:// address (like http://127.0.0.1:50051), got '{server}'");
        }

        return new AssocDbClient(new AssocDbClientOptions
        {
            Address = address,
            ApiKey = result.GetValue<string?>(ApiKeyOption) ?? result.GetValue<string?>(EnvironmentApiKeyOption),
            Timeout = CallTimeout(result),
        });
    }

    /// <summary>The deadline of each call (null for none): <c>--timeout</c>, else 30 s, except for
    /// <c>checkpoint</c>, which may rightly take minutes and which the server bounds itself (a
    /// collection's checkpoint is given up after its StateCheckpointTimeout).</summary>
    private static TimeSpan? CallTimeout(ParseResult result) => result.GetValue(TimeoutOption) switch
    {
        null => result.CommandResult.Command.Name == "checkpoint" ? null : DefaultTimeout,
        TimeSpan given when given == TimeSpan.Zero => null,
        TimeSpan given => given,
    };

    /// <summary>A duration: a number with <c>ms</c>, <c>s</c>, <c>m</c> or <c>h</c>, seconds without.</summary>
    private static TimeSpan? ParseDuration(ArgumentResult result)
    {
        string text = result.Tokens[0].Value;
        (string number, double secondsPerUnit) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1),
            _ when text.EndsWith('m') => (text[..^1], 60),
            _ when text.EndsWith('h') => (text[..^1], 3600),
            _ => (text, 1),
        };
        if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            && value >= 0 && value * secondsPerUnit <= LongestTimeout.TotalSeconds)
        {
            return TimeSpan.FromSeconds(value * secondsPerUnit);
        }

        result.AddError($"--timeout: '{text}' is not a duration up to 24h like 30s, 500ms or 2m (0 for no limit)");
        return null;
    }

    private static Option<float[]?> VectorOption(string description) => new("--vector")
    {
        Description = description + ", as comma-separated numbers",
        CustomParser = r =>
        {
            var values = new List<float>();
            foreach (string item in r.Tokens[0].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!float.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out float value))
                {
                    // A parse error, not an exception: thrown here, it ended the process with a stack trace.
                    r.AddError($"--vector: '{item}' is not a number");
                    return null;
                }

                values.Add(value);
            }

            return [.. values];
        },
    };

    /// <summary>An enum value by its name without the prefix, any case, underscores optional
    /// (<c>l2</c>, <c>bfloat16</c>); anything else is a parse error naming the choices.</summary>
    private static T ParseEnum<T>(ArgumentResult result)
        where T : struct, Enum
    {
        string text = result.Tokens[0].Value;
        // Matched by name only: Enum.TryParse also takes numbers ("7", undefined) and lists ("dot,l2").
        string wanted = text.Replace("_", "", StringComparison.Ordinal);
        if (Enum.GetNames<T>().Skip(1).FirstOrDefault(name => string.Equals(name, wanted, StringComparison.OrdinalIgnoreCase)) is { } match)
        {
            return Enum.Parse<T>(match);
        }

        result.AddError($"'{text}' is not one of {string.Join(", ", Enum.GetNames<T>().Skip(1).Select(n => n.ToLowerInvariant()))}");
        return default;
    }

    private static IEnumerable<(string Key, string Value)> Pairs(string[]? items) =>
        (items ?? []).Select(item => item.Split('=', 2) is [var key, var value] ? (key, value) : throw new FormatException($"'{item}' is not key=value"));

    private static (string, string) ParseRule(string rule) =>
        rule.Split(',', 2, StringSplitOptions.TrimEntries) is [var first, var second] ? (first, second) : throw new FormatException($"'{rule}' is not FIRST,SECOND");

    private static FactInput Triple(string? head, string? relation, string? tail, float? weight)
    {
        if (head is null || relation is null || tail is null)
        {
            throw new FormatException("give HEAD RELATION TAIL, or --file");
        }

        var fact = new FactInput { Head = head, Relation = relation, Tail = tail };
        if (weight is float w)
        {
            fact.Weight = w;
        }

        return fact;
    }

    /// <summary>A fact from a line: head, relation, tail, then an optional weight (an empty one is
    /// none); columns after the weight are ignored, as they always were.</summary>
    private static FactInput ParseFactLine(string line, float? defaultWeight) => line.Split('\t') switch
    {
        [var head, var relation, var tail] => Triple(head, relation, tail, defaultWeight),
        [var head, var relation, var tail, var weight, ..] => weight.Length == 0 ? Triple(head, relation, tail, defaultWeight)
            : float.TryParse(weight, NumberStyles.Float, CultureInfo.InvariantCulture, out float w) ? Triple(head, relation, tail, w)
            : throw new FormatException($"weight '{weight}' is not a number: {line}"),
        _ => throw new FormatException($"not `head<TAB>relation<TAB>tail[<TAB>weight]`: {line}"),
    };

    private static void PrintSummary(Output o, WriteSummary s) =>
        o.Message(s, ("applied", $"{s.Applied}"), ("unchanged", $"{s.Unchanged}"), ("created_concepts", $"{s.CreatedConcepts}"), ("created_relations", $"{s.CreatedRelations}"));

    private static void PrintHits(Output o, IEnumerable<SearchHit> hits) =>
        o.List(hits, ["concept", "score", "id"], h => [h.Concept, Output.Number(h.Score), $"{h.Id}"]);

    private static string Kind(AnswerKind kind) => kind.ToString().ToLowerInvariant();

    private static string VectorSourceName(RelationVectorSource source) => source switch
    {
        RelationVectorSource.ClosedForm => "closed_form",
        _ => source.ToString().ToLowerInvariant(),
    };

    private static string ProofText(Proof proof) =>
        string.Join("; ", proof.Facts.Select(f => $"{f.Head} {f.Relation} {f.Tail}")) + (proof.Rules.Count > 0 ? " ⊢ " + string.Join(", ", proof.Rules) : "");
}
