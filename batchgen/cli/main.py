"""The `batchgen` command line: one click group, one small function per subcommand.

Subcommands stay thin: they parse flags and hand over to the library, so everything the CLI can
do is also reachable from Python and testable without a subprocess.
"""

from __future__ import annotations

import click

from batchgen.cli.catalog import catalog
from batchgen.cli.emulator import emulator
from batchgen.cli.exits import EXIT_INVALID
from batchgen.cli.options import BatchgenGroup, log_to_stderr
from batchgen.cli.run import run
from batchgen.cli.scale import merge
from batchgen.cli.status import status
from batchgen.cli.validate import validate
from batchgen.cli.views import export, grid, report, serve
from batchgen.core.version import __version__

# The commands are defined next door (one module per command or group) and re-exported here.
__all__ = ["EXIT_INVALID", "main", "run", "status", "validate"]


@click.group(cls=BatchgenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Run batches of image-generation jobs against Segmind-style submit-then-poll APIs.

    Exit codes: 0 done, 1 failed jobs in the folder, 2 run stopped, 3 invalid input,
    130 interrupted (see each command's --help).
    """
    log_to_stderr(ctx)  # warnings (and, with run --verbose, each job) on stderr


main.add_command(validate)
main.add_command(run)
main.add_command(status)
main.add_command(grid)
main.add_command(report)
main.add_command(export)
main.add_command(emulator)
main.add_command(merge)
main.add_command(serve)
main.add_command(catalog)
