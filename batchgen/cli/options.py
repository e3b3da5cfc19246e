"""Wording and behaviour shared by the commands: one sentence for `--rpm` wherever it appears,
the defaults shown in `--help`, and invalid usage exiting 3 like any other invalid input.

Click exits 2 on a bad option value, a missing file or an unknown flag; batchgen's 2 means "the
run stopped" (auth, credits, a damaged ledger), so a script could not tell the two apart.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Final

import click

from batchgen.manifest.settings import RunSettings
from batchgen.run.runner import EXIT_INVALID

__all__ = [
    "CONCURRENCY_HELP",
    "EXIT_INVALID",
    "RPM_HELP",
    "BatchgenGroup",
    "EchoHandler",
    "InvalidUsage",
    "log_to_stderr",
    "read_key",
]

_DEFAULTS: Final = RunSettings()

RPM_HELP: Final = (
    "At most N submits (and polls, with --count-polls) in any one-minute window, "
    "or auto: learned from 429s, starting at the lowest plan's 5."
)
RUN_RPM_HELP: Final = f"{RPM_HELP} [default: the manifest's rpm, else {_DEFAULTS.rpm:g}]"
CONCURRENCY_HELP: Final = (
    "Jobs in flight at the server at once, or auto: rate x learned latency. "
    f"[default: the manifest's concurrency, else {_DEFAULTS.concurrency}]"
)


class BatchgenGroup(click.Group):
    """A click group whose usage errors (bad values, unknown flags or commands) exit 3."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _invalid(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _invalid(exc) from None


class InvalidUsage(click.UsageError):
    """A usage error with batchgen's exit code for invalid input; the message is click's."""

    exit_code = EXIT_INVALID

    def __init__(self, original: click.UsageError) -> None:
        super().__init__(original.format_message(), original.ctx)


def _invalid(exc: click.UsageError) -> Exception:
    """Every usage error exits 3; `batchgen` alone shows the help as click does, then exits 3."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        return click.exceptions.Exit(EXIT_INVALID)
    return InvalidUsage(exc)


class EchoHandler(logging.Handler):
    """The `batchgen` logger's messages on the current stderr (looked up at each message, so a
    test runner's swapped stream is honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def log_to_stderr(ctx: click.Context) -> None:
    """For one command: the `batchgen` logger's warnings (INFO with run --verbose) on stderr.
    The library itself stays quiet (a NullHandler); the CLI is the one that speaks."""
    logger = logging.getLogger("batchgen")
    handler = EchoHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    level = logger.level
    if level == logging.NOTSET:
        logger.setLevel(logging.WARNING)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    ctx.call_on_close(restore)


def read_key(path: Path) -> str:
    """The API key in `path`, stripped; an empty or unreadable file is invalid input (exit 3)."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"error: cannot read the key file {path}: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if not key:
        click.echo(f"error: the key file {path} is empty (put the API key in it)", err=True)
        sys.exit(EXIT_INVALID)
    return key
