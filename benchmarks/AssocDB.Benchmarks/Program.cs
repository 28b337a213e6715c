using AssocDB.Benchmarks;
using BenchmarkDotNet.Running;

// `kernels [--rows N] [--dim D] [--out DIR]` runs the end-to-end kernel bench (one process, one
// table); `storage [--facts N] [--concepts N] [--batch N] [--dim D] [--out DIR]` the storage
// bench; anything else goes to BenchmarkDotNet's switcher (e.g. `--filter *Scan*`).
if (args.Length > 0 && args[0] == "kernels")
{
    return KernelBench.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "storage")
{
    return StorageBench.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(KernelBench).Assembly).Run(args);
return 0;
