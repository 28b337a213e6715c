using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Streams items into a collection through <c>IngestService.Ingest</c>: batches of at most
/// <see cref="BulkIngestOptions.BatchSize"/> items, up to <see cref="BulkIngestOptions.MaxInFlight"/>
/// of them unacknowledged, each acknowledged by the server once durable.
/// </summary>
/// <remarks>
/// Resumption rests on one invariant: the items of an input are numbered 0, 1, 2, … in reading
/// order, and a batch's sequence is the number of the last item it sends (rejected items read after
/// it are numbered but not covered: a run that stops at one under
/// <see cref="BulkIngestOptions.StopOnReject"/> leaves it to be sent, fixed, by the next run of the
/// session, which sent it marked as applied before). Reading is deterministic, so the
/// numbers do not depend on the batch size, and "every item up to the session's last durable
/// sequence is stored or rejected" holds after any failure. Rejected lines take numbers as well, as
/// many as the items they would be when stored (<see cref="RejectedItem.Items"/>: a JSON-lines fact
/// with a vector is a concept and a fact whether its vector passes this client's checks or not):
/// the numbers then do not change when a client version checks more or less, and a client that
/// numbered fewer (versions before 2026-12-01 numbered only the items they sent, later ones one per
/// rejected line) numbered each item at most as high as this one does, so resuming its session
/// resends a few stored items (stored once; the server counts them unchanged) rather than skipping
/// unstored ones. A batch the server has
/// already applied is acknowledged without writing, so resending is always safe; the
/// acknowledgement still lists the items the server refuses, as its write did. Every batch is
/// therefore sent and its rejections reported, whichever run or attempt made it durable, and the
/// rejected items reach <c>rejected</c> exactly once per run: a run first asks the server for that
/// sequence and ends a batch there, so the items up to it travel in batches answered as already
/// applied (rather than written again, which would set back what another writer changed since);
/// after a dropped connection it resends every batch in flight, which it still holds (never more
/// than the in-flight window), those whose acknowledgement was lost included.
/// </remarks>
public sealed class BulkIngester
{
    private readonly AssocDbClient _client;
    private readonly BulkIngestOptions _options;
    private readonly Queue<PendingBatch> _pending = new();
    private readonly IngestRequestWriter _writer = new();
    private readonly List<ItemOrigin> _conceptOrigins = [];
    private readonly List<ItemOrigin> _factOrigins = [];
    private readonly SemaphoreSlim _window;
    private readonly Lock _rejectLock = new();
    private long _read, _facts, _stored, _duplicate, _rejected, _resumed, _batches;
    private int _reconnects, _failures;
    private long _ordinal = -1;
    private long _resumeAfter = -1;
    private volatile bool _stop;

    /// <summary>Whether a stream of this run broke, which the server may still be counting.</summary>
    private bool _streamBroke;

    /// <summary>Set with <see cref="_stop"/> when an acknowledgement rejected an item under
    /// StopOnReject: a batch being read then is not sent (one read at a bad input line is).</summary>
    private volatile bool _refusedByServer;

    /// <summary>An ingester over a client connection; run it once.</summary>
    public BulkIngester(AssocDbClient client, BulkIngestOptions options)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.Collection);
        ArgumentException.ThrowIfNullOrEmpty(options.Session);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxInFlight, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxRetries);
        _client = client;
        _options = options;
        _window = new SemaphoreSlim(options.MaxInFlight, options.MaxInFlight);
    }

    /// <summary>The counts so far; safe to read from any thread while <see cref="RunAsync"/> runs.</summary>
    public IngestCounts Counts => new(
        Interlocked.Read(ref _read), Interlocked.Read(ref _facts), Interlocked.Read(ref _stored), Interlocked.Read(ref _duplicate),
        Interlocked.Read(ref _rejected), Interlocked.Read(ref _resumed), Interlocked.Read(ref _batches), Volatile.Read(ref _reconnects))
    {
        StoppedOnReject = _options.StopOnReject && _stop,
    };

    /// <summary>Sends every item and waits until all are durable. Rejected items, from the input or
    /// the server, go to <paramref name="rejected"/> (one call at a time). Throws
    /// <see cref="AssocDbException"/> when the server refuses the ingest or stays unreachable past
    /// <see cref="BulkIngestOptions.MaxRetries"/> attempts.</summary>
    public async Task<IngestCounts> RunAsync(IEnumerable<IngestItem> items, Action<RejectedItem>? rejected = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        using IEnumerator<IngestItem> source = items.GetEnumerator();
        bool resumeKnown = false;
        while (true)
        {
            try
            {
                if (!resumeKnown)
                {
                    _resumeAfter = await _client.GetIngestProgressAsync(_options.Collection, _options.Session, cancellationToken);
                    resumeKnown = true;
                }

                await StreamAsync(source, rejected, cancellationToken);
                return Counts;
            }
            catch (Exception e) when ((IsTransient(e) || (_streamBroke && IsStreamLimit(e))) && !cancellationToken.IsCancellationRequested)
            {
                // Past the progress query, the failure is the stream's.
                _streamBroke |= resumeKnown;
                int failures = Interlocked.Increment(ref _failures);
                if (failures > _options.MaxRetries)
                {
                    throw e as AssocDbException ?? new AssocDbException((RpcException)e);
                }

                Interlocked.Increment(ref _reconnects);
                await Task.Delay(Backoff(_options, failures), cancellationToken);
            }
            catch (RpcException e)
            {
                throw AssocDbClient.Failure(e, cancellationToken);
            }
        }
    }

    /// <summary>A call made before a run (a look at the collection, say), retried as the run's own
    /// calls are: after a failure a reconnect may cure, up to <see cref="BulkIngestOptions.MaxRetries"/>
    /// times with the same backoff, each reported to <paramref name="retrying"/> with the wait.
    /// Without it, a server still starting failed the run at once, before its retries applied.</summary>
    public static async Task<T> RetryAsync<T>(
        BulkIngestOptions options, Func<CancellationToken, Task<T>> call, Action<AssocDbException, TimeSpan>? retrying = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(call);
        for (int failures = 1; ; failures++)
        {
            try
            {
                return await call(cancellationToken);
            }
            catch (AssocDbException e) when (IsTransient(e) && failures <= options.MaxRetries && !cancellationToken.IsCancellationRequested)
            {
                TimeSpan wait = Backoff(options, failures);
                retrying?.Invoke(e, wait);
                await Task.Delay(wait, cancellationToken);
            }
        }
    }

    /// <summary>The wait after the <paramref name="failures"/>-th failure in a row: doubling from the
    /// initial backoff, up to the longest.</summary>
    private static TimeSpan Backoff(BulkIngestOptions options, int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(options.MaxBackoff.TotalMilliseconds, options.InitialBackoff.TotalMilliseconds * Math.Pow(2, failures - 1)));

    /// <summary>One stream: resend what is pending, then send new batches until the input ends.</summary>
    private async Task StreamAsync(IEnumerator<IngestItem> source, Action<RejectedItem>? rejected, CancellationToken cancellationToken)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using AsyncDuplexStreamingCall<byte[], IngestAck> call =
            _client.Invoker.AsyncDuplexStreamingCall(IngestRequestWriter.IngestMethod, null, new CallOptions(cancellationToken: attempt.Token));
        Task acks = ReadAcksAsync(call.ResponseStream, rejected, attempt);
        try
        {
            PendingBatch[] resend;
            lock (_pending)
            {
                resend = [.. _pending];
            }

            foreach (PendingBatch batch in resend)
            {
                await OnStreamAsync(() => call.RequestStream.WriteAsync(batch.Request, attempt.Token));
            }

            while (!_stop)
            {
                await _window.WaitAsync(attempt.Token);
                PendingBatch? batch = ReadNextBatch(source, rejected);
                if (batch is null || _refusedByServer)
                {
                    _window.Release();
                    break;
                }

                lock (_pending)
                {
                    _pending.Enqueue(batch);
                }

                await OnStreamAsync(() => call.RequestStream.WriteAsync(batch.Request, attempt.Token));
            }

            await OnStreamAsync(call.RequestStream.CompleteAsync);
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            // A write fails when the call has ended; the response stream holds the reason (the
            // server's status, or the broken connection), so that is the error to report.
            if (await Task.WhenAny(acks, Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None)) != acks || !acks.IsFaulted)
            {
                await StopReadingAcksAsync(acks, attempt);
                throw e is RpcException ? e : new RpcException(new Status(StatusCode.Unavailable, $"the ingest stream broke: {e.Message}"));
            }
        }
        catch
        {
            // The caller's cancellation, or a failed input.
            await StopReadingAcksAsync(acks, attempt);
            throw;
        }

        await acks;
    }

    /// <summary>Stops the acknowledgement reader and waits for it, so that nothing it reports (a
    /// rejection, a count) comes after the stream is given up: it went on alongside the caller's
    /// summary, and its rejections reached a rejects file being closed.</summary>
    private static async Task StopReadingAcksAsync(Task acks, CancellationTokenSource attempt)
    {
        await attempt.CancelAsync();
        await acks.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// A write on the stream. grpc-dotnet reports a connection that broke under a write as the HTTP/2
    /// layer's bare IOException ("the request was aborted"), unless the response side noticed first:
    /// it is made the broken stream it is (UNAVAILABLE), which the caller resumes from. Left as it
    /// was, it ended the whole run whenever the write side noticed a dropped connection first; an
    /// IOException reading the input, on the other hand, must still end it.
    /// </summary>
    private static async Task OnStreamAsync(Func<Task> write)
    {
        try
        {
            await write();
        }
        catch (IOException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"the ingest stream broke: {e.Message}", e));
        }
    }

    private async Task ReadAcksAsync(IAsyncStreamReader<IngestAck> responses, Action<RejectedItem>? rejected, CancellationTokenSource attempt)
    {
        try
        {
            while (await responses.MoveNext(attempt.Token))
            {
                IngestAck ack = responses.Current;
                PendingBatch batch;
                lock (_pending)
                {
                    if (_pending.Count == 0 || _pending.Peek().Sequence != ack.Sequence)
                    {
                        throw new RpcException(new Status(StatusCode.Internal, $"the server acknowledged sequence {ack.Sequence}, which was not the oldest batch in flight"));
                    }

                    batch = _pending.Dequeue();
                }

                Account(batch, ack, rejected);
                _window.Release();
                Interlocked.Exchange(ref _failures, 0);
            }

            lock (_pending)
            {
                if (_pending.Count > 0)
                {
                    throw new RpcException(new Status(StatusCode.Unavailable, $"the server closed the stream with {_pending.Count} batches unacknowledged"));
                }
            }
        }
        catch (OperationCanceledException e) when (!attempt.IsCancellationRequested)
        {
            // Nothing here cancelled the stream: the connection was cut under it, or the server reset
            // it. The client can throw OperationCanceledException for these
            // (ThrowOperationCanceledOnCancellation), which ended the run; it is a broken stream,
            // resumed from.
            await attempt.CancelAsync();
            throw new RpcException(new Status(StatusCode.Unavailable, $"the ingest stream was cancelled by the server or the connection: {e.Message}", e));
        }
        catch
        {
            await attempt.CancelAsync();
            throw;
        }
    }

    /// <summary><see cref="NextBatch"/>, with a failure of the input kept apart from a broken stream:
    /// the caller retries a stream that broke, and would otherwise take a reader's
    /// InvalidOperationException for one and end the run early as if the input were done.</summary>
    private PendingBatch? ReadNextBatch(IEnumerator<IngestItem> source, Action<RejectedItem>? rejected)
    {
        try
        {
            return NextBatch(source, rejected);
        }
        catch (Exception e) when (e is not (IOException or UnauthorizedAccessException or InvalidDataException or OperationCanceledException))
        {
            throw new InvalidDataException($"the input could not be read: {e.Message}", e);
        }
    }

    /// <summary>The next batch from the input, or null when it is exhausted (or a strict run must stop).
    /// A batch ends at the item the server's mark was at when the run began, so that it is answered
    /// as already applied, and those after it are written, as a whole.</summary>
    private PendingBatch? NextBatch(IEnumerator<IngestItem> source, Action<RejectedItem>? rejected)
    {
        _conceptOrigins.Clear();
        _factOrigins.Clear();
        int bytes = 0;
        long logBytes = 0;
        long vectorBytes = 4L * _options.CollectionDimension;
        long lastSent = -1;
        while (_conceptOrigins.Count + _factOrigins.Count < _options.BatchSize && bytes < _options.MaxBatchBytes && logBytes < BulkIngestOptions.MaxLogEntryBytes
               && !_stop && source.MoveNext())
        {
            IngestItem item = source.Current;
            Interlocked.Increment(ref _read);
            // A rejected line takes the numbers of the items it would be, so numbers do not depend on
            // which checks this client runs (see the remarks).
            long before = _ordinal;
            _ordinal += item is RejectedItem { Items: var numbers } ? numbers : 1;
            switch (item)
            {
                case RejectedItem bad:
                    Reject(bad, rejected);
                    break;
                case FactItem fact:
                    int factBytes = _writer.Add(fact);
                    _factOrigins.Add(new ItemOrigin(item.Source, item.Line));
                    lastSent = _ordinal;
                    bytes += factBytes;
                    logBytes += factBytes + (2 * vectorBytes);
                    break;
                case ConceptItem concept:
                    int conceptBytes = _writer.Add(concept.Concept);
                    _conceptOrigins.Add(new ItemOrigin(item.Source, item.Line));
                    lastSent = _ordinal;
                    bytes += conceptBytes;
                    logBytes += conceptBytes + vectorBytes;
                    break;
                default:
                    throw new ArgumentException($"unknown item type {item.GetType().Name}", nameof(source));
            }

            // Past the mark (a rejected line's numbers may straddle it): the batch ends with the items
            // at or before it, answered as already applied.
            if (before < _resumeAfter && _ordinal >= _resumeAfter && _conceptOrigins.Count + _factOrigins.Count > 0)
            {
                break;
            }
        }

        if (_conceptOrigins.Count + _factOrigins.Count == 0)
        {
            return null;
        }

        return new PendingBatch(lastSent, _writer.Finish(_options.Collection, _options.Session, lastSent), [.. _conceptOrigins], [.. _factOrigins]);
    }

    private void Account(PendingBatch batch, IngestAck ack, Action<RejectedItem>? rejected)
    {
        Interlocked.Increment(ref _batches);
        foreach (IngestRejection rejection in ack.Rejected)
        {
            _refusedByServer |= _options.StopOnReject;
            Reject(batch.Locate(rejection), rejected);
        }

        if (ack.UnlistedRejections > 0)
        {
            // Left off the acknowledgement to keep it within the server's message limit: which
            // lines they are is not known, so one entry for the batch counts them all.
            _refusedByServer |= _options.StopOnReject;
            ItemOrigin first = batch.FirstItem;
            Reject(
                new RejectedItem(
                    first.Source,
                    first.Line,
                    $"refused by the server: {ack.UnlistedRejections} items of the batch that starts at this line, past the {ack.Rejected.Count} listed, "
                        + "were left unlisted to keep the server's answer within its Limits:MaxMessageBytes; send smaller batches to have each one listed"),
                rejected,
                ack.UnlistedRejections);
        }

        if (ack.AlreadyApplied)
        {
            // Made durable by an earlier run, or by this one when the acknowledgement was lost; which
            // items changed the collection is no longer known. (Servers before 2026-12-01 list no
            // rejections here.)
            Interlocked.Add(ref _resumed, batch.Count - ack.Rejected.Count - ack.UnlistedRejections);
            return;
        }

        Interlocked.Add(ref _stored, (ack.Concepts?.Applied ?? 0) + (ack.Facts?.Applied ?? 0));
        Interlocked.Add(ref _duplicate, (ack.Concepts?.Unchanged ?? 0) + (ack.Facts?.Unchanged ?? 0));
        // The facts the server took: its summary counts each valid one, listed rejections or not.
        Interlocked.Add(ref _facts, (ack.Facts?.Applied ?? 0) + (ack.Facts?.Unchanged ?? 0));
    }

    /// <summary>Counts <paramref name="count"/> rejected items, reported as <paramref name="item"/>.</summary>
    private void Reject(RejectedItem item, Action<RejectedItem>? rejected, int count = 1)
    {
        Interlocked.Add(ref _rejected, count);
        if (_options.StopOnReject)
        {
            _stop = true;
        }

        lock (_rejectLock)
        {
            rejected?.Invoke(item);
        }
    }

    /// <summary>Failures a reconnect may cure: the connection broke, the server is (re)starting, it
    /// did not answer within the client's timeout, or it reset the stream (CANCELLED: earlier servers
    /// did so when stopped with a batch in hand, and a proxy may; the caller's own cancellation is
    /// told apart by its token).</summary>
    private static bool IsTransient(Exception e) =>
        ((e as RpcException)?.StatusCode ?? (e as AssocDbException)?.StatusCode)
            is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Aborted or StatusCode.DeadlineExceeded or StatusCode.Cancelled;

    /// <summary>The server's refusal of a stream past its Limits:MaxIngestStreams. Retried after a
    /// stream of the run broke: the server may still count that stream until it notices the
    /// connection is gone (a half-open one, when its pings go unanswered). A run whose first stream
    /// is refused so ends.</summary>
    private static bool IsStreamLimit(Exception e) =>
        e is RpcException { StatusCode: StatusCode.ResourceExhausted } refused
        && string.IsNullOrEmpty(refused.Trailers.GetValue(AssocDbException.FieldTrailer))
        && refused.Status.Detail.Contains("(Limits:MaxIngestStreams)", StringComparison.Ordinal);

    /// <summary>Where an item came from, kept for the server's rejections of it.</summary>
    private readonly record struct ItemOrigin(string Source, long Line);

    /// <summary>A batch sent and not yet acknowledged (its encoded request), with where its items came from.</summary>
    private sealed record PendingBatch(long Sequence, byte[] Request, ItemOrigin[] Concepts, ItemOrigin[] Facts)
    {
        public int Count => Concepts.Length + Facts.Length;

        /// <summary>Where the item the batch is reported by, when an item's own is not known, came from: its first concept, else its first fact.</summary>
        public ItemOrigin FirstItem => Concepts.Length > 0 ? Concepts[0] : Facts[0];

        /// <summary>The input line a server rejection names (<c>facts[3].head</c> → the 4th fact's line).</summary>
        public RejectedItem Locate(IngestRejection rejection)
        {
            string field = rejection.Field;
            int open = field.IndexOf('[', StringComparison.Ordinal), close = field.IndexOf(']', StringComparison.Ordinal);
            ItemOrigin[]? list = field.StartsWith("facts[", StringComparison.Ordinal) ? Facts : field.StartsWith("concepts[", StringComparison.Ordinal) ? Concepts : null;
            if (list is not null && close > open
                && int.TryParse(field.AsSpan(open + 1, close - open - 1), System.Globalization.CultureInfo.InvariantCulture, out int index)
                && index >= 0 && index < list.Length)
            {
                string rest = close + 2 <= field.Length ? field[(close + 2)..] : "";
                return new RejectedItem(list[index].Source, list[index].Line, $"refused by the server: {(rest.Length > 0 ? rest + " " : "")}{rejection.Message}");
            }

            return new RejectedItem(FirstItem.Source, FirstItem.Line, $"refused by the server: {field}: {rejection.Message}");
        }
    }
}
