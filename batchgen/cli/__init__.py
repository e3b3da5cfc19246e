"""The `batchgen` command line: click commands, one module per group of commands."""
