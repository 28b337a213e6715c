namespace AssocDB.Server.Hosting;

/// <summary>
/// Ends the ingest streams at shutdown before the server begins closing its connections. When
/// the host begins to stop, <see cref="Stopping"/> tells every stream to take no more batches: it
/// finishes the one being written, sends its acknowledgement and ends with UNAVAILABLE. The stop
/// then waits until each stream's response, status included, has been sent, at most
/// <see cref="Timeout"/>, and <see cref="StatusGrace"/> more for the clients to read them, before
/// the hosted services stop and Kestrel closes the connections.
/// </summary>
/// <remarks>
/// A client's HTTP/2 layer drops what its caller has not read yet when the connection closes: a
/// status that arrived, unread, became INTERNAL ("the HTTP/2 server closed the connection") or,
/// when batches the server no longer read made the close a TCP reset, UNAVAILABLE without the
/// server's reason, and clients with standard retry rules do not resume from INTERNAL. Kestrel
/// closes a connection as soon as it has no call left, and its stop began while the streams were
/// still ending, so the close followed a stream's status at once, and a client that read a few
/// milliseconds late (a loaded machine) lost the status (1 in 6 rounds under a parallel test load;
/// every time for a client reading 0.3 s late).
/// </remarks>
internal sealed class IngestDrain : IHostedLifecycleService, IDisposable
{
    /// <summary>How long a stopping server waits for its ingest streams to end (a batch being
    /// written, its acknowledgement) before closing connections regardless.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>How long the connections stay open once the streams have ended, for their clients to
    /// read the status (see the remarks); only a stop that found streams running waits it. 1 s let a
    /// client on a starved machine lose it now and then (1 in 7 runs of the stop tests beside two
    /// other process-driving test classes, for a client reading 0.3 s after the signal).</summary>
    public static readonly TimeSpan StatusGrace = TimeSpan.FromSeconds(3);

    /// <summary>Never disposed: Kestrel gives up on a stream it has aborted without waiting for its
    /// handler, so a handler held in a batch's write can go on after the host's services are
    /// disposed and then read <see cref="Stopping"/>, whose token a disposed source refuses to hand
    /// out (ObjectDisposedException), and the source's cancel would throw the same. It has no timer
    /// and no wait handle, so disposing it would free nothing.</summary>
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenRegistration _onApplicationStopping;
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;
    private bool _stopBegun;

    /// <summary>Whether a stream ran while the stop was under way, whose client should get its status.</summary>
    private bool _streamsAtStop;

    public IngestDrain(IHostApplicationLifetime lifetime)
    {
        // A signal (SIGTERM, Ctrl+C) stops the application before the host's stop calls
        // StoppingAsync; the streams are told at the first of the two.
        _onApplicationStopping = lifetime.ApplicationStopping.Register(BeginStop);
    }

    /// <summary>Cancelled when the server begins to stop: streams take no more batches.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Counts an ingest stream as running until its response has been sent.</summary>
    public void Track(HttpContext call)
    {
        lock (_lock)
        {
            _running++;
            _streamsAtStop |= _stopBegun;
        }

        call.Response.OnCompleted(() =>
        {
            lock (_lock)
            {
                if (--_running == 0 && _stopBegun)
                {
                    _drained.TrySetResult();
                }
            }

            return Task.CompletedTask;
        });
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        BeginStop();
        lock (_lock)
        {
            if (!_streamsAtStop)
            {
                return;
            }
        }

        try
        {
            await _drained.Task.WaitAsync(Timeout, cancellationToken);
            await Task.Delay(StatusGrace, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            // Kestrel's own shutdown takes it from here: it waits for the calls, then resets them.
        }
    }

    private void BeginStop()
    {
        lock (_lock)
        {
            if (_stopBegun)
            {
                return;
            }

            _stopBegun = true;
            _streamsAtStop = _running > 0;
            if (_running == 0)
            {
                _drained.TrySetResult();
            }
        }

        _stopping.Cancel();
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _onApplicationStopping.Dispose();
}
