using AssocDB.Client;
using AssocDB.Protocol.V1;
using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// A server restarted with a lower Limits:IngestSessionsKept reports each session's progress as the
/// collection holds it: every mark it had, until the first batch of the next new session, which
/// leaves the most recently written sessions up to the limit, its own included; the others then
/// read as new (-1), also after a restart.
/// </summary>
public sealed class IngestSessionLimitTests
{
    private const string Collection = "sessions";

    [Fact]
    public async Task After_the_limit_is_lowered_progress_reads_every_mark_until_a_new_session_trims_them()
    {
        string data = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        string[] old = ["s0", "s1", "s2", "s3", "s4", "s5"];
        try
        {
            await using (RunningServer server = await RunningServer.StartAsync(dataDirectory: data))
            {
                await server.Client.CreateCollectionAsync(Collection, 4);
                for (int i = 0; i < old.Length; i++)
                {
                    await IngestAsync(server.Client, old[i], i);
                }

                // s1 is written again: the most recent of the old sessions.
                await IngestAsync(server.Client, "s1", 10);
            }

            string[] lowered = ["--AssocDB:Limits:IngestSessionsKept=2"];
            await using (RunningServer server = await RunningServer.StartAsync(dataDirectory: data, extraArgs: lowered))
            {
                long[] before = await ProgressAsync(server.Client, old);
                Assert.Equal([0, 10, 2, 3, 4, 5], before);
                await IngestAsync(server.Client, "new", 7);
                long[] after = await ProgressAsync(server.Client, [.. old, "new"]);
                Assert.Equal([-1, 10, -1, -1, -1, -1, 7], after);
            }

            await using (RunningServer server = await RunningServer.StartAsync(dataDirectory: data))
            {
                long[] restarted = await ProgressAsync(server.Client, [.. old, "new"]);
                Assert.Equal([-1, 10, -1, -1, -1, -1, 7], restarted);
            }
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task IngestAsync(AssocDbClient client, string session, long sequence)
    {
        using AsyncDuplexStreamingCall<IngestRequest, IngestAck> stream = client.Ingest.Ingest();
        await stream.RequestStream.WriteAsync(new IngestRequest
        {
            Collection = Collection,
            Session = session,
            Sequence = sequence,
            Facts = { new FactInput { Head = $"{session}{sequence}", Relation = "r", Tail = "t" } },
        });
        await stream.RequestStream.CompleteAsync();
        Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(sequence, stream.ResponseStream.Current.Sequence);
    }

    private static async Task<long[]> ProgressAsync(AssocDbClient client, string[] sessions)
    {
        var progress = new long[sessions.Length];
        for (int i = 0; i < sessions.Length; i++)
        {
            progress[i] = await client.GetIngestProgressAsync(Collection, sessions[i]);
        }

        return progress;
    }
}
