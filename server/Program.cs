// The AssocDB server: `AssocDB.Server [--host H] [--port P] [--data DIR] [--device D] [--api-key K]
// [--metrics-port P] [--insecure] [--AssocDB:Section:Key=value …]`. See AssocServerOptions.
return await AssocDB.Server.AssocServer.RunAsync(args);
