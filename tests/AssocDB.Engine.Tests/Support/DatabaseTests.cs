namespace AssocDB.Engine.Tests.Support;

/// <summary>
/// A test class over a real database in its own temp folder: xUnit makes an instance per test, so
/// each test gets a fresh one, closed and deleted after it.
/// </summary>
public abstract class DatabaseTests : IAsyncLifetime
{
    protected TestDatabase Db { get; } = new();

    /// <summary>What a test class sets up in the database before each test; nothing by default.</summary>
    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync() => await Db.DisposeAsync();
}
