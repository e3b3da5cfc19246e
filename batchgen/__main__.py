"""`python -m batchgen` is the `batchgen` command."""

from batchgen.cli.main import main

main()
