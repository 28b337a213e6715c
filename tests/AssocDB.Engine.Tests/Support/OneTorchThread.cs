using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace AssocDB.Engine.Tests.Support;

/// <summary>
/// libtorch's intra-op threads wait for each other at every operation; on a 2-core runner shared
/// with other test classes that made small training steps 10–50× slower than one thread. The
/// setting is the process's, so it is made once, before any test: set by one class's constructor,
/// it changed the thread count of whichever learning tests happened to run after it.
/// </summary>
internal static class OneTorchThread
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries", Justification = "A test assembly: the setting must hold before xunit runs any test, in any order.")]
    internal static void Initialize() => set_num_threads(1);
}
