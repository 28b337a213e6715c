using System.Diagnostics;
using System.Threading.Channels;
using AssocDB.Engine;
using AssocDB.Engine.Model;
using AssocDB.Server.Configuration;
using AssocDB.Server.Errors;
using AssocDB.Server.Metrics;

namespace AssocDB.Server.Search;

/// <summary>
/// Micro-batching of search: concurrent calls wait in a channel, and one loop answers them with as
/// few engine searches as possible, since a batch of queries costs one matrix product (far less
/// than one product per query). A batch is taken when the loop is free: everything already waiting
/// (calls that arrived while the previous search ran need no extra wait), up to
/// <see cref="SearchBatchingOptions.MaxBatch"/> queries, plus
/// <list type="bullet">
/// <item>the calls that answered clients send next, while any is still to come and within
/// <see cref="SearchBatchingOptions.ReturnWaitMicroseconds"/> of the previous batch's end: every
/// answered call counts as one to come, and every arriving call as one come. Clients that send
/// their next call when answered otherwise split into two cohorts that alternate (one searched
/// while the other's answers and next calls travel), each paying a whole pass over the matrix.
/// When the window closes with calls still to come, they are forgotten (their clients stopped, or
/// do not call back at once), so later batches do not wait for them;</item>
/// <item>whatever arrives within <see cref="SearchBatchingOptions.MaxDelayMicroseconds"/> of the
/// batch's first call's arrival.</item>
/// </list>
/// </summary>
/// <remarks>
/// Calls are coalesced only with calls on the same collection with the same query-exclusion and
/// metadata filter; k may differ (the search uses the largest and each call keeps its own prefix,
/// which is its own top k), within bounds (see <see cref="Searches"/>). If a coalesced search
/// fails, each of its calls is searched on its own,
/// so one call's bad query is answered to that call only, with a field path in its own request.
/// A call of a whole batch or more gains nothing from waiting for others, and searched by the loop
/// it held every other call, on every collection, for as long as it ran (a 10,000-query call is 40
/// passes over the matrix): such calls are searched beside the loop, one at a time.
/// </remarks>
internal sealed class SearchBatcher : BackgroundService
{
    private readonly SearchBatchingOptions _options;
    private readonly ServerMetrics _metrics;
    private readonly Channel<PendingSearch> _pending = Channel.CreateUnbounded<PendingSearch>(new UnboundedChannelOptions { SingleReader = true });
    /// <summary>Held by the call of a whole batch or more being searched beside the loop: several at
    /// once would only share the cores.</summary>
    private readonly SemaphoreSlim _wholeBatch = new(1, 1);
    /// <summary>Calls answered whose clients have not sent a call since: the ones to come back.</summary>
    private int _toCome;
    /// <summary>Queries of the calls in <see cref="_pending"/>, bounded by
    /// <see cref="SearchBatchingOptions.MaxQueuedQueries"/>.</summary>
    private int _queued;

    public SearchBatcher(AssocServerOptions options, ServerMetrics metrics)
    {
        _options = options.SearchBatching;
        _metrics = metrics;
    }

    /// <summary>Searches, coalesced with concurrent calls when batching is on.</summary>
    public Task<Result<IReadOnlyList<IReadOnlyList<SearchHit>>>> SearchAsync(
        Collection collection, IReadOnlyList<SearchQuery> queries, SearchOptions options, CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
        {
            _metrics.SearchBatchQueries.Observe(queries.Count);
            return Task.FromResult(collection.Search(queries, options, cancellationToken));
        }

        if (Interlocked.Add(ref _queued, queries.Count) > _options.MaxQueuedQueries)
        {
            Interlocked.Add(ref _queued, -queries.Count);
            throw GrpcErrors.ResourceExhausted("queries", $"the server has {_options.MaxQueuedQueries} queries waiting to be searched, its limit (SearchBatching:MaxQueuedQueries); retry shortly");
        }

        if (queries.Count >= _options.MaxBatch)
        {
            return SearchWholeBatchAsync(collection, queries, options, cancellationToken);
        }

        var pending = new PendingSearch(collection, queries, options, cancellationToken);
        CountArrival();
        if (!_pending.Writer.TryWrite(pending))
        {
            Interlocked.Add(ref _queued, -queries.Count);
            throw GrpcErrors.ShuttingDown();
        }

        return pending.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Searches a call of a whole batch or more beside the loop, once the one before it is
    /// done; it counts as queued until it starts.</summary>
    private async Task<Result<IReadOnlyList<IReadOnlyList<SearchHit>>>> SearchWholeBatchAsync(
        Collection collection, IReadOnlyList<SearchQuery> queries, SearchOptions options, CancellationToken cancellationToken)
    {
        try
        {
            await _wholeBatch.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Add(ref _queued, -queries.Count);
        }

        try
        {
            _metrics.SearchBatchQueries.Observe(queries.Count);
            // On a thread of its own: seconds of search on a pool thread (beside the kernel's own
            // workers) starved the pool on two cores, and other calls' I/O waited for a new thread
            // (a one-query call took 1.3 s beside it).
            return await Task.Factory.StartNew(
                () => collection.Search(queries, options, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            _wholeBatch.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<PendingSearch>();
        long previousEnd = 0;
        try
        {
            while (await _pending.Reader.WaitToReadAsync(stoppingToken))
            {
                await GatherAsync(batch, previousEnd, stoppingToken);
                // Counted before the answers go out: a client answered first may call again at once.
                Interlocked.Add(ref _toCome, batch.Count);
                try
                {
                    Run(batch);
                }
                catch (Exception e)
                {
                    // Only what Run lets through (out of memory): its calls get the error, and the
                    // loop goes on serving, instead of leaving them to their deadlines and every later
                    // call to ShuttingDown.
                    batch.ForEach(call => call.Completion.TrySetException(e));
                }

                previousEnd = Stopwatch.GetTimestamp();
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: Kestrel has drained its calls, so nothing should be waiting.
        }
        finally
        {
            _pending.Writer.TryComplete();
            // Calls gathered when the stop came, and calls still queued.
            batch.ForEach(call => call.Completion.TrySetException(GrpcErrors.ShuttingDown()));
            while (_pending.Reader.TryRead(out PendingSearch? left))
            {
                left.Completion.TrySetException(GrpcErrors.ShuttingDown());
            }
        }
    }

    /// <summary>Fills the batch with what waits, then waits for more while a window is open: the
    /// return window (from the previous batch's end) while answered calls are still to come back,
    /// the delay window (from now) until the batch is full. Unless it stops full, the calls still
    /// to come are forgotten. Timers tick in whole milliseconds (CancelAfter truncates, so a
    /// sub-millisecond wait would end at once): waits are rounded up.</summary>
    private async Task GatherAsync(List<PendingSearch> batch, long previousEnd, CancellationToken stoppingToken)
    {
        long returnEnd = previousEnd + Ticks(_options.ReturnWaitMicroseconds);
        int queries = 0;
        bool full = false;
        CancellationTokenSource? window = null;
        try
        {
            while (true)
            {
                queries = Collect(batch, queries);
                // From the batch's first call's arrival: one that waited through the previous search
                // has waited already.
                long delayEnd = (batch.Count > 0 ? batch[0].Arrived : Stopwatch.GetTimestamp()) + Ticks(_options.MaxDelayMicroseconds);
                if (queries >= _options.MaxBatch
                    || (_pending.Reader.TryPeek(out PendingSearch? next) && queries + next.Queries.Count > _options.MaxBatch))
                {
                    full = true; // or the next call does not fit: it starts the next batch
                    return;
                }

                long end = Volatile.Read(ref _toCome) > 0 ? Math.Max(delayEnd, returnEnd) : delayEnd;
                TimeSpan wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), end);
                if (wait <= TimeSpan.Zero)
                {
                    return;
                }

                window ??= CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                window.CancelAfter(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)));
                if (!await _pending.Reader.WaitToReadAsync(window.Token))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // The window closed; search what has arrived.
        }
        finally
        {
            window?.Dispose();
            // Stopped waiting with the batch not full: the calls still to come did not come within
            // the window (or none is to come), and later batches must not wait for them.
            if (!full)
            {
                Volatile.Write(ref _toCome, 0);
            }
        }
    }

    /// <summary>An arriving call is one of those to come back (or a new client's: then none is to come).</summary>
    private void CountArrival()
    {
        int seen = Volatile.Read(ref _toCome);
        while (seen > 0)
        {
            int was = Interlocked.CompareExchange(ref _toCome, seen - 1, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }

    private static long Ticks(int microseconds) => microseconds * Stopwatch.Frequency / 1_000_000;

    /// <summary>Moves waiting calls into the batch while their queries fit; always takes at least one
    /// call. Returns the batch's query count.</summary>
    private int Collect(List<PendingSearch> batch, int queries)
    {
        while (_pending.Reader.TryPeek(out PendingSearch? next)
               && (queries == 0 || queries + next.Queries.Count <= _options.MaxBatch)
               && _pending.Reader.TryRead(out next))
        {
            Interlocked.Add(ref _queued, -next.Queries.Count);
            if (next.CancellationToken.IsCancellationRequested)
            {
                next.Completion.TrySetCanceled(next.CancellationToken);
                continue;
            }

            batch.Add(next);
            queries += next.Queries.Count;
        }

        return queries;
    }

    /// <summary>Hits a coalesced search may compute whatever its calls asked for: the most the
    /// default settings coalesce (256 queries, k = 1,000), so that they are always searched together.</summary>
    private const long HitsAlwaysCoalesced = 256 * 1000;

    /// <summary>
    /// Splits calls on one collection, filter and exclusion into the searches that answer them: a
    /// coalesced search computes the largest k for every query, so calls join one while that stays
    /// within twice the hits they ask for (or <see cref="HitsAlwaysCoalesced"/>). With the batch
    /// raised to 10,000 queries, one call for k = 1,000 beside 9,999 single-query calls for 10
    /// hits made one search build 10 M hits for 110 k asked, past the per-call bound on hits that
    /// the reply limit sets. The largest k comes first, so each search's k is its first call's.
    /// </summary>
    private static IEnumerable<List<PendingSearch>> Searches(IEnumerable<PendingSearch> calls)
    {
        var search = new List<PendingSearch>();
        long asked = 0;
        long queries = 0;
        foreach (PendingSearch call in calls.OrderByDescending(call => call.Options.K))
        {
            long askedWith = asked + ((long)call.Options.K * call.Queries.Count);
            long computedWith = (long)(search.Count > 0 ? search[0] : call).Options.K * (queries + call.Queries.Count);
            if (search.Count > 0 && computedWith > Math.Max(2 * askedWith, HitsAlwaysCoalesced))
            {
                yield return search;
                search = [];
                (asked, queries) = (0, 0);
                askedWith = (long)call.Options.K * call.Queries.Count;
            }

            search.Add(call);
            asked = askedWith;
            queries += call.Queries.Count;
        }

        if (search.Count > 0)
        {
            yield return search;
        }
    }

    private void Run(List<PendingSearch> batch)
    {
        foreach (List<PendingSearch> calls in batch.GroupBy(p => new GroupKey(p.Collection, p.Options.ExcludeQueryConcepts, FilterKey(p.Options.MetadataFilter))).SelectMany(Searches))
        {
            if (calls.Count == 1)
            {
                Complete(calls[0], () => calls[0].Collection.Search(calls[0].Queries, calls[0].Options, calls[0].CancellationToken));
                continue;
            }

            List<SearchQuery> queries = [.. calls.SelectMany(c => c.Queries)];
            SearchOptions options = calls[0].Options; // the largest k (see Searches)
            Result<IReadOnlyList<IReadOnlyList<SearchHit>>>? combined;
            using var allCancelled = new AllCancelled(calls.Select(call => call.CancellationToken));
            try
            {
                combined = calls[0].Collection.Search(queries, options, allCancelled.Token);
            }
            catch (OperationCanceledException) when (allCancelled.Token.IsCancellationRequested)
            {
                calls.ForEach(call => call.Completion.TrySetCanceled(call.CancellationToken));
                continue;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The combined search is larger than any of its calls (all their queries, the
                // largest k), so it may fail where each of them alone would not.
                combined = null;
            }

            if (combined is not { IsOk: true } answered)
            {
                calls.ForEach(c => Complete(c, () => c.Collection.Search(c.Queries, c.Options, c.CancellationToken)));
                continue;
            }

            // Observed once answered: a combined search that failed is searched again call by call,
            // and each of those is observed.
            _metrics.SearchBatchQueries.Observe(queries.Count);

            int offset = 0;
            foreach (PendingSearch call in calls)
            {
                var own = new IReadOnlyList<SearchHit>[call.Queries.Count];
                for (int i = 0; i < own.Length; i++)
                {
                    IReadOnlyList<SearchHit> hits = answered.Value[offset + i];
                    own[i] = hits.Count > call.Options.K ? hits.Take(call.Options.K).ToArray() : hits;
                }

                offset += own.Length;
                call.Completion.TrySetResult(own);
            }
        }
    }

    private void Complete(PendingSearch call, Func<Result<IReadOnlyList<IReadOnlyList<SearchHit>>>> search)
    {
        _metrics.SearchBatchQueries.Observe(call.Queries.Count);
        try
        {
            call.Completion.TrySetResult(search());
        }
        catch (OperationCanceledException) when (call.CancellationToken.IsCancellationRequested)
        {
            call.Completion.TrySetCanceled(call.CancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            call.Completion.TrySetException(e);
        }
    }

    /// <summary>One string per distinct filter. Keys and values may hold any character, so each is
    /// written with its length in front: with separators alone, {"a": "1", "b": "2"} and
    /// {"a": "1\0b\02"} were one key, and the second call searched with the first one's filter.</summary>
    internal static string FilterKey(IReadOnlyDictionary<string, string>? filter) =>
        filter is null or { Count: 0 } ? "" : string.Concat(filter.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key.Length}:{p.Key}{p.Value.Length}:{p.Value}"));

    /// <summary>A token that fires once every one of some tokens has: a coalesced search serves
    /// all its calls, so it stops only when none of them still waits for it.</summary>
    private sealed class AllCancelled : IDisposable
    {
        private readonly CancellationTokenSource _all = new();
        private readonly List<CancellationTokenRegistration> _registrations = [];
        private int _waiting;

        public AllCancelled(IEnumerable<CancellationToken> tokens)
        {
            List<CancellationToken> each = [.. tokens];
            _waiting = each.Count;
            foreach (CancellationToken token in each)
            {
                _registrations.Add(token.Register(() =>
                {
                    if (Interlocked.Decrement(ref _waiting) == 0)
                    {
                        _all.Cancel();
                    }
                }));
            }
        }

        public CancellationToken Token => _all.Token;

        public void Dispose()
        {
            _registrations.ForEach(registration => registration.Dispose());
            _all.Dispose();
        }
    }

    private sealed record GroupKey(Collection Collection, bool ExcludeQueryConcepts, string Filter);

    private sealed record PendingSearch(
        Collection Collection, IReadOnlyList<SearchQuery> Queries, SearchOptions Options, CancellationToken CancellationToken)
    {
        /// <summary>When the call was queued (<see cref="Stopwatch"/> ticks).</summary>
        public long Arrived { get; } = Stopwatch.GetTimestamp();

        public TaskCompletionSource<Result<IReadOnlyList<IReadOnlyList<SearchHit>>>> Completion { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
