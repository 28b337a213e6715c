namespace AssocDB.Engine.Tests.Support;

/// <summary>Tests that measure the process (its threads' CPU time), and so must not run beside
/// other tests: xUnit runs this collection once the parallel ones are done.</summary>
[CollectionDefinition(nameof(AloneInTheProcess), DisableParallelization = true)]
public sealed class AloneInTheProcess;
