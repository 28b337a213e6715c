// assocdb-ingest-bench: see IngestBench for what it measures and its options.
return await AssocDB.IngestBench.IngestBench.RunAsync(args);
