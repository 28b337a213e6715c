namespace AssocDB.Server.Tests;

/// <summary>Files of the repository the tests run from, for tests that hold its documents to the code.</summary>
internal static class RepositoryFiles
{
    /// <summary>The folder holding AssocDB.sln, found upwards from the test binaries.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "AssocDB.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("AssocDB.sln not found above " + AppContext.BaseDirectory);
    }
}
