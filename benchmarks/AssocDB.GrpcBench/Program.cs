using AssocDB.GrpcBench;

// `AssocDB.GrpcBench [--concepts N] [--dim D] [--k K] [--batches 1,64,256] [--clients 1,16,64]
// [--unbatched-clients 64] [--channel-per-client] [--server-option Section:Key=value]... [--warmup S] [--duration S]
// [--in-process-seconds S] [--paired-rounds N] [--paired-seconds S] [--torch-threads T] [--json FILE]`; see BenchSettings.
return await SearchBench.RunAsync(BenchSettings.Parse(args), string.Join(' ', ["AssocDB.GrpcBench", .. args]));
