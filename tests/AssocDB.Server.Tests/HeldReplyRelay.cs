using System.Net;
using System.Net.Sockets;

namespace AssocDB.Server.Tests;

/// <summary>
/// A TCP relay in front of the server that passes the client's bytes at once and holds the
/// server's until <see cref="Release"/>: a call the server has answered stays in flight for as long
/// as a test needs.
/// </summary>
internal sealed class HeldReplyRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _server;
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _connections = [];
    private readonly Task _accepting;

    public HeldReplyRelay(string server)
    {
        _server = new Uri(server);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The relay's address, for the client.</summary>
    public string Address => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Completes once a client has connected (a gRPC channel connects at its first call).</summary>
    public Task Connected => _connected.Task;

    /// <summary>Sends what the server has answered and passes its bytes from now on.</summary>
    public void Release() => _released.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_connections)
        {
            _connections.ForEach(connection => connection.Dispose());
        }

        await _accepting;
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var server = new TcpClient();
                lock (_connections)
                {
                    _connections.AddRange([client, server]);
                }

                await server.ConnectAsync(_server.Host, _server.Port, _stop.Token);
                _connected.TrySetResult();
                _ = PumpAsync(client.GetStream(), server.GetStream(), Task.CompletedTask);
                _ = PumpAsync(server.GetStream(), client.GetStream(), _released.Task);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Disposed.
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, Task released)
    {
        try
        {
            await released.WaitAsync(_stop.Token);
            await from.CopyToAsync(to, _stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // One side closed, or the relay is disposed.
        }
    }
}
