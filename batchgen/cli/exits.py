"""How the commands exit on bad input or a stopping ledger, shared by `validate` and `run`.

The codes are `run/runner.py`'s: 3 (`EXIT_INVALID`, distinct from click's 2 for bad usage) for
input the user must fix, 2 (`EXIT_STOPPED`) for a ledger that stops the run, as for any other
stopped run.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import NoReturn

import click

from batchgen.core.errors import LedgerError, ManifestError, ManifestProblem
from batchgen.run.runner import EXIT_INVALID, EXIT_STOPPED

__all__ = ["EXIT_INVALID", "exit_on_errors", "report_invalid"]


def report_invalid(
    problems: tuple[ManifestProblem, ...], total: int, checked: int | None = None
) -> NoReturn:
    for problem in problems:
        click.echo(str(problem), err=True)
    if total > len(problems):
        click.echo(f"… and {total - len(problems)} more", err=True)
    jobs = f" in {checked:,} jobs" if checked is not None else ""
    click.echo(f"invalid: {total:,} problem(s){jobs}; nothing was sent", err=True)
    sys.exit(EXIT_INVALID)


@contextlib.contextmanager
def exit_on_errors() -> Iterator[None]:
    """The exit codes of `run`: 3 for input the user must fix, 2 for a ledger that stops us."""
    try:
        yield
    except ManifestError as exc:
        report_invalid(exc.problems, exc.total)
    except ValueError as exc:  # SettingsError, a missing API key
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    except LedgerError as exc:
        click.echo(f"stopped: {exc} (nothing more was submitted)", err=True)
        sys.exit(EXIT_STOPPED)
