namespace AssocDB.Server.Tests.Ingestion;

/// <summary>
/// A test over a real server child process on a data folder of its own: the process (when the
/// test started one) is stopped and the folder deleted after each test.
/// </summary>
public abstract class ServerProcessTests(string folderPrefix) : IAsyncLifetime
{
    protected string Folder { get; } = Directory.CreateTempSubdirectory(folderPrefix).FullName;

    private protected ServerChildProcess? Server { get; set; }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        Directory.Delete(Folder, recursive: true);
    }
}
