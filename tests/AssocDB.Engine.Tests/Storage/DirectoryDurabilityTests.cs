using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Storage;

// Creates, drops and manifest replacements flush their folder after the rename (a power loss cannot
// be simulated here); this guards that the flush really runs on Linux and reports a failure.
public sealed class DirectoryDurabilityTests
{
    [Fact]
    public void A_folder_is_flushed_and_a_missing_one_is_an_error_naming_it()
    {
        using var folder = new TempDirectory();
        DirectoryDurability.Flush(folder.Path);

        string missing = Path.Combine(folder.Path, "missing");
        if (OperatingSystem.IsLinux())
        {
            IOException error = Assert.Throws<IOException>(() => DirectoryDurability.Flush(missing));
            Assert.Contains(missing, error.Message, StringComparison.Ordinal);
        }
    }
}
