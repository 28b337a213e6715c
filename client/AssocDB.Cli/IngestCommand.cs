using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using AssocDB.Client;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;

namespace AssocDB.Cli;

/// <summary>
/// <c>assocdb ingest FILE... -c NAME</c>: streams files into a collection through the ingest
/// service, with a progress bar on stderr, a summary on stdout and a reject report. A rerun with the
/// same session (by default derived from the files' paths, sizes and times) resumes after the last
/// durable batch. Exit codes: 0 done (rejected lines are reported, not fatal); 1 bad command line;
/// 2 a line was rejected under <c>--strict</c>; 3 the server refused the ingest or stayed
/// unreachable through every retry; 4 an input file could not be read, or the rejects file could not
/// be written; 130 interrupted (Ctrl+C or
/// SIGTERM) after writing the rejects and the summary of what was stored.
/// </summary>
internal static class IngestCommand
{
    public const int Done = 0;
    public const int Usage = 1;
    public const int StrictReject = 2;
    public const int ServerFailure = 3;
    public const int InputFailure = 4;

    /// <summary>The code a shell gives a command that Ctrl+C ended, so an interrupted ingest reads
    /// the same whether it wound down in time or was ended by the signal (a SIGTERM that outlasts
    /// the wind-down ends it with 143, the shell's code for that signal).</summary>
    public const int Interrupted = 130;

    /// <summary>Rejects echoed to stderr when no <c>--rejects</c> file is given.</summary>
    private const int RejectsShown = 10;

    private static readonly Dictionary<string, IngestFormat> Formats = new(StringComparer.OrdinalIgnoreCase)
    {
        ["auto"] = IngestFormat.Auto,
        ["tsv"] = IngestFormat.Tsv,
        ["csv"] = IngestFormat.Csv,
        ["jsonl"] = IngestFormat.JsonLines,
        ["nt"] = IngestFormat.NTriples,
        ["vectors"] = IngestFormat.Vectors,
    };

    public static Command Create(TextWriter output, TextWriter error)
    {
        var files = new Argument<string[]>("files") { Description = "Input files; .gz ones are decompressed on the fly", Arity = ArgumentArity.OneOrMore };
        var collection = new Option<string>("--collection", "-c") { Description = "Collection name", Required = true };
        var format = new Option<string>("--format") { Description = "auto (from the extension), tsv, csv, jsonl, nt or vectors", DefaultValueFactory = _ => "auto" };
        format.AcceptOnlyFromAmong([.. Formats.Keys]);
        var batch = new Option<int>("--batch") { Description = "Items per batch (at most the server's max_batch)", DefaultValueFactory = _ => 5000 };
        var strict = new Option<bool>("--strict") { Description = "Stop at the first bad line (exit 2); the lines before it are stored" };
        var rejects = new Option<string?>("--rejects") { Description = "Write each rejected line as file:line<TAB>reason to this file" };
        var session = new Option<string?>("--session") { Description = "Session id to resume (default: derived from the files)" };
        var names = new Option<string?>("--names") { Description = "Names file of a .npy input (default: its .names sibling)" };
        var inFlight = new Option<int>("--in-flight") { Description = "Batches sent ahead of their acknowledgement", DefaultValueFactory = _ => 4 };
        var retries = new Option<int>("--retries") { Description = "Reconnect attempts after a dropped connection", DefaultValueFactory = _ => 8 };
        var noProgress = new Option<bool>("--no-progress") { Description = "No progress bar" };
        var command = new Command("ingest", "Stream facts and concept vectors from files into a collection, resumably")
        {
            files, collection, format, batch, strict, rejects, session, names, inFlight, retries, noProgress,
        };
        AtLeast(batch, 1);
        AtLeast(inFlight, 1);
        AtLeast(retries, 0);
        session.Validators.Add(result =>
        {
            // An empty id would be taken for none by the ingester, which then failed with a stack trace.
            if (result.Tokens.Count > 0 && result.Tokens[^1].Value.Length == 0)
            {
                result.AddError("--session must not be empty");
            }
        });
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            var run = new Run(output, error)
            {
                Files = result.GetValue(files)!,
                Collection = result.GetValue(collection)!,
                Format = Formats[result.GetValue(format)!],
                Session = result.GetValue(session),
                RejectsPath = result.GetValue(rejects),
                ReadOptions = new IngestReadOptions { NamesPath = result.GetValue(names) },
                Options = new BulkIngestOptions
                {
                    Collection = result.GetValue(collection)!,
                    Session = "-",
                    BatchSize = result.GetValue(batch),
                    MaxInFlight = result.GetValue(inFlight),
                    MaxRetries = result.GetValue(retries),
                    StopOnReject = result.GetValue(strict),
                },
                ShowProgress = !result.GetValue(noProgress),
                Json = result.GetValue(CliApp.JsonOutput),
            };
            AssocDbClient client;
            try
            {
                client = CliApp.Connect(result);
            }
            catch (FormatException e)
            {
                await error.WriteLineAsync($"error: {e.Message}");
                return Usage;
            }

            using (client)
            {
                return await run.ExecuteAsync(client, cancellationToken);
            }
        });
        return command;
    }

    /// <summary>Refuses a value of <paramref name="option"/> below <paramref name="minimum"/> as a bad command line.</summary>
    internal static void AtLeast(Option<int> option, int minimum) =>
        option.Validators.Add(result =>
        {
            // Validators run before conversion errors are reported, and asking for a value that did
            // not convert (--batch 5k) throws: such a value is left to the parser's own error.
            int value = result.Tokens.Count == 0 ? result.GetValueOrDefault<int>()
                : int.TryParse(result.Tokens[^1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int given) ? given
                : minimum;
            if (value < minimum)
            {
                result.AddError($"{option.Name} must be at least {minimum}");
            }
        });

    /// <summary>The derived session id: the same files (path, size, modification time) and format give the same id.</summary>
    private static string DeriveSession(IEnumerable<string> files, IngestFormat format, IngestReadOptions readOptions)
    {
        var identity = new StringBuilder(format.ToString());
        // A .npy input's names file is part of it: another one names the same rows differently.
        foreach (string file in files.SelectMany(file => new[] { file, IngestSource.NamesFileOf(file, readOptions) }).OfType<string>())
        {
            var info = new FileInfo(file);
            identity.Append('\n').Append(info.FullName).Append('\t').Append(info.Exists ? info.Length : -1).Append('\t').Append(info.Exists ? info.LastWriteTimeUtc.Ticks : 0);
        }

        return "files-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity.ToString())))[..16];
    }

    private sealed class Run(TextWriter output, TextWriter error)
    {
        private readonly Stopwatch _clock = new();

        // A terminal gets a bar redrawn in place; a log file gets a line every 10 s.
        private readonly bool _terminal = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
        private long _bytesDone;
        private IngestSource? _current;

        /// <summary>Set once an input without a size (a pipe) is read: the run's total is not known.</summary>
        private volatile bool _unsized;
        private int _rejectsShown;

        /// <summary>Rejected lines reported, which the rejected count may pass: the server's
        /// rejections it left unlisted are reported as one line for their batch.</summary>
        private long _rejectsReported;

        /// <summary>Whether a write to the rejects file failed.</summary>
        private bool _rejectsNotWritten;

        public required string[] Files { get; init; }

        public required string Collection { get; init; }

        public required IngestFormat Format { get; init; }

        public required string? Session { get; init; }

        public required string? RejectsPath { get; init; }

        public required IngestReadOptions ReadOptions { get; init; }

        public required BulkIngestOptions Options { get; init; }

        public required bool ShowProgress { get; init; }

        public required bool Json { get; init; }

        public async Task<int> ExecuteAsync(AssocDbClient client, CancellationToken cancellationToken)
        {
            IngestFormat[] formats;
            try
            {
                formats = [.. Files.Select(file => Format == IngestFormat.Auto ? IngestSource.Detect(file) : Format)];
            }
            catch (ArgumentException e)
            {
                await error.WriteLineAsync($"error: {e.Message}");
                return Usage;
            }

            if (Files.FirstOrDefault(file => !File.Exists(file)) is string missing)
            {
                await error.WriteLineAsync($"error: input file '{missing}' does not exist");
                return InputFailure;
            }

            // Opening it for writing empties it: an input named by mistake (a tab completion away)
            // was lost before a line was read, and the run then stored nothing and exited 0.
            if (RejectsPath is not null && InputAt(RejectsPath, formats) is string input)
            {
                await error.WriteLineAsync($"error: --rejects {RejectsPath} is the input {input}, which writing the rejects would empty");
                return Usage;
            }

            // Opened before anything is sent, so that a path that cannot be written (a missing folder,
            // a directory) is the command line's error, not an unhandled one after the server's work.
            StreamWriter? rejectFile;
            try
            {
                // Flushed line by line: a write that fails (a full disk) then fails where the line is
                // reported, and is told as such, instead of at the close after the summary.
                rejectFile = RejectsPath is null ? null : new StreamWriter(RejectsPath, append: false, new UTF8Encoding(false)) { AutoFlush = true };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await error.WriteLineAsync($"error: --rejects {RejectsPath} cannot be written: {e.Message}");
                return Usage;
            }

            try
            {
                return await IngestAsync(client, formats, rejectFile, cancellationToken);
            }
            finally
            {
                try
                {
                    rejectFile?.Dispose();
                }
                catch (IOException) when (_rejectsNotWritten)
                {
                    // The line that failed is still buffered and fails again; the run said so.
                }
            }
        }

        /// <summary>The input file, or names file of a <c>.npy</c> input, that <paramref name="path"/>
        /// is (links followed, in the file's name and in its folders'), or null. Hard links are not
        /// told apart.</summary>
        private string? InputAt(string path, IngestFormat[] formats)
        {
            string target = Physical(path);
            IEnumerable<string> inputs = Files.Concat(Files.Select((file, i) => formats[i] == IngestFormat.Vectors ? IngestSource.NamesFileOf(file, ReadOptions) : null).OfType<string>());
            return inputs.FirstOrDefault(input => Physical(input) == target);
        }

        /// <summary>The full path of <paramref name="file"/> with each link on it followed, as far as
        /// it exists: the current folder is a physical path, so an input given relative to a folder
        /// reached through a link and the same file named through the link differed.</summary>
        private static string Physical(string file)
        {
            string path = Path.GetFullPath(file);
            // As many links as Linux follows in one lookup.
            for (int links = 0; links < 40 && FirstLinkFollowed(path) is string followed; links++)
            {
                path = followed;
            }

            return path;
        }

        /// <summary><paramref name="path"/> with its first link (from the root) replaced by the
        /// link's target, or null when none of its parts is a link.</summary>
        private static string? FirstLinkFollowed(string path)
        {
            string root = Path.GetPathRoot(path)!;
            string[] parts = path[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            string prefix = root;
            for (int i = 0; i < parts.Length; i++)
            {
                prefix = Path.Combine(prefix, parts[i]);
                string? target;
                try
                {
                    target = new FileInfo(prefix).LinkTarget;
                }
                catch (IOException)
                {
                    // Not there (yet): nothing further to follow.
                    return null;
                }

                if (target is not null)
                {
                    return Path.GetFullPath(Path.Combine(Path.GetDirectoryName(prefix)!, target, string.Join(Path.DirectorySeparatorChar, parts[(i + 1)..])));
                }
            }

            return null;
        }

        private async Task<int> IngestAsync(AssocDbClient client, IngestFormat[] formats, StreamWriter? rejectFile, CancellationToken cancellationToken)
        {
            CollectionInfo target;
            try
            {
                target = await BulkIngester.RetryAsync(
                    Options,
                    token => client.DescribeCollectionAsync(Collection, token),
                    (e, wait) => error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{e.StatusCode}: {e.Message}; retrying in {wait.TotalSeconds:0.##} s")),
                    cancellationToken);
            }
            catch (AssocDbException e)
            {
                await error.WriteLineAsync($"error: {e.StatusCode}: {e.Message}");
                return ServerFailure;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Interrupted before anything was sent: the run exits as any interrupted one does.
                await error.WriteLineAsync("error: interrupted");
                return Interrupted;
            }

            string session = Session ?? DeriveSession(Files, Format, ReadOptions);
            long totalBytes = Files.Sum(file => new FileInfo(file).Length);
            await error.WriteLineAsync($"ingesting {Files.Length} file{(Files.Length == 1 ? "" : "s")} ({Megabytes(totalBytes)} MB) into '{Collection}', session {session}");
            var ingester = new BulkIngester(client, Options with { Session = session, CollectionDimension = target.Dimension });
            IEnumerable<IngestItem> items = Items(formats, ReadOptions with { Dimension = target.Dimension, Cosine = target.Metric == Metric.Cosine });

            using var stopProgress = new CancellationTokenSource();
            _clock.Start();
            Task progress = ShowProgress ? ProgressAsync(ingester, totalBytes, stopProgress.Token) : Task.CompletedTask;
            int code = Done;
            string? failure = null;
            try
            {
                IngestCounts final = await Task.Run(() => ingester.RunAsync(items, item => Rejected(item, rejectFile), cancellationToken), cancellationToken);
                code = final.StoppedOnReject ? StrictReject : Done;
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or AssocDbException)
            {
                // Every acknowledged batch is durable, so the summary and rejects below are true of
                // the collection, and the session resumes after them.
                failure = $"interrupted (rerun with --session {session} to resume)";
                code = Interrupted;
            }
            catch (AssocDbException e)
            {
                failure = $"{e.StatusCode}: {e.Message} (rerun with --session {session} to resume)";
                code = ServerFailure;
            }
            catch (RejectsNotWrittenException e)
            {
                // The rerun reports the rejected lines of the batches stored before this one again.
                failure = $"writing --rejects {RejectsPath}: {e.Message} (rerun with --session {session} and a rejects file that can be written to resume; every rejected line is reported again)";
                code = InputFailure;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                failure = $"reading {_current?.Path}: {e.Message}";
                code = InputFailure;
            }
            finally
            {
                _current?.Dispose();
                await stopProgress.CancelAsync();
                await progress;
            }

            IngestCounts counts = ingester.Counts;
            if (failure is not null)
            {
                await error.WriteLineAsync($"error: {failure}");
            }

            if (rejectFile is null && _rejectsReported > _rejectsShown)
            {
                await error.WriteLineAsync($"... {_rejectsReported - _rejectsShown} more rejected lines (list them all with --rejects FILE)");
            }

            PrintSummary(counts, session);
            return code;
        }

        /// <summary>Every file's items in turn; each file is opened when reached and closed when done.</summary>
        private IEnumerable<IngestItem> Items(IngestFormat[] formats, IngestReadOptions readOptions)
        {
            for (int i = 0; i < Files.Length; i++)
            {
                _current = IngestSource.Open(Files[i], formats[i], readOptions);
                _unsized |= !_current.HasLength;
                foreach (IngestItem item in _current.Read())
                {
                    yield return item;
                }

                // What was read, not the size: a pipe (/dev/stdin, a FIFO) has none.
                Interlocked.Add(ref _bytesDone, _current.BytesRead);
                _current.Dispose();
                _current = null;
            }
        }

        private void Rejected(RejectedItem item, StreamWriter? rejectFile)
        {
            _rejectsReported++;
            if (rejectFile is not null)
            {
                try
                {
                    rejectFile.WriteLine(item.ToString());
                }
                catch (IOException e)
                {
                    _rejectsNotWritten = true;
                    throw new RejectsNotWrittenException(e);
                }
            }
            else if (_rejectsShown < RejectsShown)
            {
                _rejectsShown++;
                // Over the progress bar in a terminal, which the next redraw puts back below.
                error.WriteLine(ShowProgress && _terminal ? $"\r\e[Krejected {item}" : $"rejected {item}");
            }
        }

        private async Task ProgressAsync(BulkIngester ingester, long totalBytes, CancellationToken stop)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(_terminal ? 250 : 10_000));
            try
            {
                while (await timer.WaitForNextTickAsync(stop))
                {
                    // In a terminal: back to the line start, redraw, erase what a longer previous line left.
                    await error.WriteAsync(_terminal ? $"\r{ProgressLine(ingester.Counts, totalBytes)}\e[K" : ProgressLine(ingester.Counts, totalBytes) + "\n");
                }
            }
            catch (OperationCanceledException)
            {
                if (_terminal)
                {
                    await error.WriteLineAsync($"\r{ProgressLine(ingester.Counts, totalBytes)}\e[K");
                }
            }
        }

        private string ProgressLine(IngestCounts counts, long totalBytes)
        {
            long read = Interlocked.Read(ref _bytesDone) + (_current?.BytesRead ?? 0);
            double seconds = _clock.Elapsed.TotalSeconds;
            string counted = string.Create(CultureInfo.InvariantCulture, $"{counts.Read:N0} read  {counts.Rejected:N0} rejected  {counts.Read / Math.Max(seconds, 1e-3):N0}/s");
            if (_unsized || totalBytes == 0 || read > totalBytes)
            {
                // A pipe has no size, and a file still being written grows past its own: how much
                // is left is not known.
                return $"{Megabytes(read)} MB  {counted}";
            }

            double fraction = (double)read / totalBytes;
            const int width = 30;
            int filled = (int)(fraction * width);
            // TimeSpan's own h:mm:ss wrapped at a day, which a long load's estimate often passes.
            string eta = fraction > 0 && fraction < 1 ? ProgressBar.Duration(seconds * (1 - fraction) / fraction) : "-";
            return string.Create(CultureInfo.InvariantCulture,
                $"[{new string('#', filled)}{new string('.', width - filled)}] {fraction * 100,5:0.0}%  {Megabytes(read)}/{Megabytes(totalBytes)} MB  {counted}  ETA {eta}");
        }

        private void PrintSummary(IngestCounts counts, string session)
        {
            double seconds = _clock.Elapsed.TotalSeconds;
            var o = new Output(output, Json);
            var summary = new Dictionary<string, object>
            {
                ["session"] = session,
                ["read"] = counts.Read,
                ["stored"] = counts.Stored,
                ["duplicate"] = counts.Duplicate,
                ["rejected"] = counts.Rejected,
                ["resumed"] = counts.Resumed,
                ["facts"] = counts.Facts,
                ["batches"] = counts.Batches,
                ["reconnects"] = counts.Reconnects,
                ["seconds"] = Math.Round(seconds, 3),
                ["facts_per_second"] = Math.Round(counts.Facts / Math.Max(seconds, 1e-3)),
            };
            if (counts.StoppedOnReject)
            {
                summary["stopped"] = "at the first rejected line (--strict)";
            }

            o.Map(summary);
        }

        private static string Megabytes(long bytes) => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture);
    }
}

/// <summary>A write to the <c>--rejects</c> file failed. An <see cref="IOException"/>, so that the
/// ingester passes it on as it does a failed read of the input, for the command to tell the two apart.</summary>
internal sealed class RejectsNotWrittenException(IOException inner) : IOException(inner.Message, inner);
