// assocdb: the AssocDB command-line client. `assocdb --help` lists the commands.
return await AssocDB.Cli.CliApp.RunAsync(args, Console.Out, Console.Error);
