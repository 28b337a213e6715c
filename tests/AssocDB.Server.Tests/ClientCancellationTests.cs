using AssocDB.Client;
using AssocDB.Protocol.V1;

namespace AssocDB.Server.Tests;

/// <summary>
/// A call its caller cancels ends in <see cref="OperationCanceledException"/>, as
/// <see cref="AssocDbClient"/> promises, also when the transport reports the abort as an I/O failure.
/// grpc-dotnet then said UNAVAILABLE ("Error reading next message. IOException: The request was
/// aborted."), now and then on a real connection: <c>assocdb learn</c>, interrupted while watching its
/// job, took that for a failed server, exited without cancelling the job and left it training.
/// </summary>
public sealed class ClientCancellationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task A_job_watch_cancelled_by_its_caller_ends_as_cancelled()
    {
        string c = ServerFixture.NewCollection("cancel-watch");
        await fixture.Client.CreateCollectionAsync(c, 8);
        await fixture.Client.AddFactsAsync(c, LearningTests.FamilyFacts());
        Job job = await fixture.Client.LearnAsync(new LearnRequest { Collection = c, Model = EmbeddingModel.Transe, MaxEpochs = 10_000_000, BatchSize = 8, ValidationFraction = 0 });
        try
        {
            using var client = new AssocDbClient(new AssocDbClientOptions { Address = new Uri(fixture.Server.Address), HttpHandler = new AbortsAsIoErrors() });
            using var cancel = new CancellationTokenSource();
            var watching = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task<Job> watch = client.WaitForJobAsync(job.Id, _ => watching.TrySetResult(), cancel.Token);
            // Cancelled from outside the progress callback, so that a read of the stream is pending.
            await watching.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch);
        }
        finally
        {
            await fixture.Client.CancelJobAsync(job.Id);
        }
    }

    [Fact]
    public async Task A_unary_call_cancelled_by_its_caller_ends_as_cancelled()
    {
        // The server's answer is held, so the call is still waiting for it when cancelled.
        await using var relay = new HeldReplyRelay(fixture.Server.Address);
        using var client = new AssocDbClient(new AssocDbClientOptions { Address = new Uri(relay.Address), HttpHandler = new AbortsAsIoErrors() });
        using var cancel = new CancellationTokenSource();
        Task<IReadOnlyList<CollectionInfo>> call = client.ListCollectionsAsync(cancel.Token);
        await relay.Connected.WaitAsync(TimeSpan.FromSeconds(30));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    /// <summary>A transport on which a cancellation aborts the request as an I/O failure, as a
    /// connection does when the abort reaches a pending read before the call is marked cancelled:
    /// the request fails with <see cref="HttpRequestException"/> and a body read with
    /// <see cref="IOException"/>, instead of with <see cref="OperationCanceledException"/>.</summary>
    private sealed class AbortsAsIoErrors() : DelegatingHandler(new SocketsHttpHandler())
    {
        private const string Aborted = "The request was aborted.";

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            HttpResponseMessage response;
            try
            {
                response = await base.SendAsync(request, cancellationToken);
            }
            catch (OperationCanceledException e)
            {
                throw new HttpRequestException(Aborted, new IOException(Aborted, e));
            }

            var content = new StreamContent(new AbortedReads(await response.Content.ReadAsStreamAsync(cancellationToken)));
            foreach (KeyValuePair<string, IEnumerable<string>> header in response.Content.Headers)
            {
                content.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }

            response.Content = content;
            return response;
        }

        private sealed class AbortedReads(Stream inner) : Stream
        {
            public override bool CanRead => true;

            public override bool CanSeek => false;

            public override bool CanWrite => false;

            public override long Length => throw new NotSupportedException();

            public override long Position
            {
                get => throw new NotSupportedException();
                set => throw new NotSupportedException();
            }

            public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            {
                try
                {
                    return await inner.ReadAsync(buffer, cancellationToken);
                }
                catch (OperationCanceledException e)
                {
                    throw new IOException(Aborted, e);
                }
            }

            public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
                ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

            public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

            public override void Flush()
            {
            }

            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

            public override void SetLength(long value) => throw new NotSupportedException();

            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    inner.Dispose();
                }

                base.Dispose(disposing);
            }
        }
    }
}
