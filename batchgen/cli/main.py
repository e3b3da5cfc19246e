"""The `batchgen` command line: one click group, one small function per subcommand.

Subcommands stay thin: they parse flags and hand over to the library, so everything the CLI can
do is also reachable from Python and testable without a subprocess.
"""

from __future__ import annotations

import click

from batchgen.cli.catalog import catalog
from batchgen.cli.emulator import emulator
from batchgen.cli.exits import EXIT_INVALID
from batchgen.cli.run import run
from batchgen.cli.scale import merge
from batchgen.cli.status import status
from batchgen.cli.validate import validate
from batchgen.cli.views import export, grid, report, serve
from batchgen.core.version import __version__

# The commands are defined next door (one module per command or group) and re-exported here.
__all__ = ["EXIT_INVALID", "main", "run", "status", "validate"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
def main() -> None:
    """Run batches of image-generation jobs against Segmind-style submit-then-poll APIs."""


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
