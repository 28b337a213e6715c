using AssocDB.Engine;

namespace AssocDB.Server.Hosting;

/// <summary>Opens (and recovers) the database; <see cref="AssocDatabase.Open"/> unless replaced,
/// e.g. by a test that holds recovery open to observe the server while it recovers. The token is
/// cancelled when the server is asked to stop.</summary>
public delegate AssocDatabase DatabaseOpener(DatabaseOptions options, ILoggerFactory loggerFactory, CancellationToken stopping);
