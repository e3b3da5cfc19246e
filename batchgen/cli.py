"""The `batchgen` command line: one click group, one small function per subcommand.

Subcommands stay thin: they parse flags and hand over to the library, so everything the CLI can
do is also reachable from Python and testable without a subprocess.
"""

from __future__ import annotations

import click

from batchgen import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
def main() -> None:
    """Run batches of image-generation jobs against Segmind-style submit-then-poll APIs."""
