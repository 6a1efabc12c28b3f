"""The command line: ``haven`` (the app) and its subcommands for scripts."""
