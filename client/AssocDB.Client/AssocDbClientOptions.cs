namespace AssocDB.Client;

/// <summary>Where and how an <see cref="AssocDbClient"/> connects.</summary>
public sealed record AssocDbClientOptions
{
    /// <summary>The server address; <c>https://</c> for TLS.</summary>
    public Uri Address { get; init; } = new("http://127.0.0.1:50051");

    /// <summary>The API key sent as <c>authorization: Bearer …</c>; none when null or empty.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The deadline of each unary call, measured from its start; none when null. Streams
    /// (ingestion, watching a job) have none. A call past it throws <see cref="AssocDbException"/>
    /// with <c>DeadlineExceeded</c>, and a write that does may have been applied all the same.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>The largest message received, in bytes; null (the default) for no limit of the
    /// client's own: the server bounds every reply by its <c>Limits:MaxMessageBytes</c>, which a
    /// fixed client limit below it (gRPC's default is 4 MiB; this was 64 MiB) made fail.</summary>
    public int? MaxReceiveMessageBytes { get; init; }

    /// <summary>How long a connection with calls open may go without a frame from the server
    /// before the client sends it an HTTP/2 ping. Applies to the handler the client makes, not to
    /// <see cref="HttpHandler"/>.</summary>
    public TimeSpan KeepAlivePingDelay { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long the client waits for a ping's answer before it closes the connection and
    /// fails the calls on it. A stream has no deadline, so this is how one notices a server that
    /// stopped answering (its host gone, its process stopped): within the delay plus this timeout.</summary>
    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>A custom handler (e.g. to trust a private certificate); the client disposes it.</summary>
    public HttpMessageHandler? HttpHandler { get; init; }
}
