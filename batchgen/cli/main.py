"""The `batchgen` command line: one click group, one small function per subcommand.

Subcommands stay thin: they parse flags and hand over to the library, so everything the CLI can
do is also reachable from Python and testable without a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NoReturn

import click

from batchgen.cli.emulator import emulator
from batchgen.cli.options import (
    CONCURRENCY_HELP,
    EXIT_INVALID,
    RUN_RPM_HELP,
    BatchgenGroup,
    log_to_stderr,
    read_key,
)
from batchgen.cli.scale import merge, scale_kwargs, scale_options
from batchgen.cli.views import export, grid, report
from batchgen.core.errors import LedgerError, ManifestError, ManifestProblem
from batchgen.core.lifecycle import LedgerDamage
from batchgen.core.version import __version__
from batchgen.edges.client import DEFAULT_API_ROOT
from batchgen.edges.ledger import LEDGER_NAME
from batchgen.manifest.loader import load_manifest
from batchgen.manifest.settings import SettingsError
from batchgen.run.console import dry_run_lines, run_summary_lines, summary_lines
from batchgen.run.options import RunOptions
from batchgen.run.resumeplan import plan_resume
from batchgen.run.runner import (
    DEFAULT_GRACE,
    DEFAULT_STATUS_INTERVAL,
    EXIT_STOPPED,
    MediaLimits,
    run_manifest,
)
from batchgen.views.status import EXIT_DAMAGED, EXIT_MISSING, read_ledger, status_lines, summarize

__all__ = ["EXIT_INVALID", "main", "run", "status", "validate"]

_LOG: Final = logging.getLogger("batchgen")


@click.group(cls=BatchgenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Run batches of image-generation jobs against Segmind-style submit-then-poll APIs.

    Exit codes: 0 done, 1 failed jobs in the folder, 2 run stopped, 3 invalid input,
    130 interrupted (see each command's --help).
    """
    log_to_stderr(ctx)


main.add_command(grid)
main.add_command(report)
main.add_command(export)
main.add_command(emulator)


@main.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", help="Model for jobs that do not name one (default: qwen-image).")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Refuse to expand past this many.")
@click.option("--price-per-image", type=click.FloatRange(min=0), help="USD, for the estimate.")
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), metavar="N", help=RUN_RPM_HELP)
@click.option("--concurrency", type=click.IntRange(min=1), metavar="N", help=CONCURRENCY_HELP)
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many expanded jobs to print.",
)
def validate(
    manifest: Path,
    model: str | None,
    max_jobs: int | None,
    price_per_image: float | None,
    rpm: float | None,
    concurrency: int | None,
    show: int,
) -> None:
    """Check MANIFEST offline: count jobs, show a few, estimate cost and time. Sends nothing.

    Exits 0 when the manifest is valid and 3 when it is not (problems go to stderr).
    """
    overrides = {
        "max_jobs": max_jobs,
        "price_per_image": price_per_image,
        "rpm": rpm,
        "concurrency": concurrency,
    }
    try:
        loaded = load_manifest(manifest, model=model, overrides=overrides)
        scan = loaded.scan(sample=show)
    except ManifestError as exc:
        _report_invalid(exc.problems, exc.total)
    except SettingsError as exc:
        raise click.BadParameter(str(exc)) from exc
    if not scan.ok:
        _report_invalid(scan.problems, scan.total_problems, checked=scan.count)
    for line in summary_lines(loaded, scan):
        click.echo(line)


def _report_invalid(
    problems: tuple[ManifestProblem, ...], total: int, checked: int | None = None
) -> NoReturn:
    for problem in problems:
        click.echo(str(problem), err=True)
    if total > len(problems):
        click.echo(f"… and {total - len(problems)} more", err=True)
    jobs = f" in {checked:,} jobs" if checked is not None else ""
    click.echo(f"invalid: {total:,} problem(s){jobs}; nothing was sent", err=True)
    sys.exit(EXIT_INVALID)


@main.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", help="Output folder, or an fsspec URL such as s3://bucket/prefix.")
@click.option("--model", help="Model for jobs that do not name one (default: qwen-image).")
@click.option(
    "--base-url",
    default=DEFAULT_API_ROOT,
    show_default=True,
    help="API root; /v1 and /v2 are appended.",
)
@click.option("--concurrency", type=click.IntRange(min=1), metavar="N", help=CONCURRENCY_HELP)
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), metavar="N", help=RUN_RPM_HELP)
@click.option("--count-polls", is_flag=True, default=None, help="Polls count against --rpm too.")
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="File holding the API key (default: $SEGMIND_API_KEY).",
)
@click.option("--emulator", is_flag=True, help="Run against the built-in emulator (no key needed).")
@click.option("--retry-failed", is_flag=True, help="Run again the jobs that failed before.")
@click.option(
    "--budget-usd", type=click.FloatRange(min=0), help="Stop submitting before spend passes this."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display; just the summary.")
@click.option("--verbose", "-v", is_flag=True, help="Also log every finished job (stderr).")
@click.option(
    "--status-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_STATUS_INTERVAL,
    show_default=True,
    help="Seconds between JSON status lines when stderr is not a terminal.",
)
@click.option("--dry-run", is_flag=True, help="Validate and plan the resume; send nothing.")
@click.option("--private-media", is_flag=True, help="Fetch images from private/LAN addresses too.")
@click.option(
    "--sync", "sync", is_flag=True, default=None, help="One blocking v1 call per job (mode: sync)."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds jobs in flight get to finish after the first Ctrl-C.",
)
@click.option(
    "--expect-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Typical seconds per image, to time the first polls (then learned). "
    "[default: the model's, 28 for qwen-image]",
)
@scale_options
def run(
    manifest: Path,
    out: str | None,
    model: str | None,
    base_url: str,
    concurrency: int | None,
    rpm: float | None,
    count_polls: bool | None,
    key_file: Path | None,
    emulator: bool,
    retry_failed: bool,
    budget_usd: float | None,
    quiet: bool,
    verbose: bool,
    status_interval: float,
    dry_run: bool,
    sync: bool | None,
    grace: float,
    expect_seconds: float | None,
    private_media: bool,
    **scale: Any,
) -> None:
    """Run MANIFEST: submit, poll, and write images, metadata.jsonl and ledger.jsonl.

    Exit codes: 0 all jobs done, 1 failed jobs in the folder (this run's or an earlier one's;
    retry with --retry-failed), 2 run stopped (auth, credits, model gone, budget, damaged
    ledger, disk), 3 invalid input (manifest, flags, key file), 130 interrupted (Ctrl-C,
    SIGTERM). Running the same command again resumes.
    """
    api_key = os.environ.get("SEGMIND_API_KEY")
    if key_file is not None:
        api_key = read_key(key_file)
    overrides = {
        "concurrency": concurrency,
        "rpm": rpm,
        "count_polls": count_polls,
        "mode": "sync" if sync else None,
        "budget_usd": budget_usd,
    }
    if verbose:
        _LOG.setLevel(logging.INFO)
    with _exit_on_errors():
        scaling = scale_kwargs(**scale)
    if dry_run:
        _dry_run(manifest, model, out, overrides, retry_failed, scaling)
        return
    with _exit_on_errors():
        options = RunOptions(
            api_key=api_key,
            out=out,
            model=model,
            base_url=base_url,
            overrides=overrides,
            emulator=emulator,
            retry_failed=retry_failed,
            handle_signals=True,
            grace=grace,
            expect_seconds=expect_seconds,
            quiet=quiet,
            status_interval=status_interval,
            status_stream=sys.stderr,
            media=MediaLimits(allow_private=private_media),
            on_start=None if quiet else click.echo,
        )
        result = asyncio.run(run_manifest(manifest, dataclasses.replace(options, **scaling)))
    for line in run_summary_lines(result):
        click.echo(line)
    sys.exit(result.exit_code)


@main.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def status(folder: Path, as_json: bool) -> None:
    """Show job counts by state from DIR/ledger.jsonl, read-only (safe while a run is going).

    Exit codes: 0 shown, 2 the ledger is damaged (the line is named), 3 no ledger in DIR.
    """
    try:
        snapshot = read_ledger(folder)
    except LedgerDamage as exc:
        click.echo(f"error: {folder / LEDGER_NAME} is damaged at {exc}", err=True)
        sys.exit(EXIT_DAMAGED)
    except FileNotFoundError:
        hint = (
            "a shard's folder, OUT/shards/I-of-N"
            if (folder / "shards").is_dir()
            else "a run's --out"
        )
        click.echo(f"error: no ledger at {folder / LEDGER_NAME} (is DIR {hint}?)", err=True)
        sys.exit(EXIT_MISSING)
    except OSError as exc:
        click.echo(f"error: cannot read {folder / LEDGER_NAME}: {exc}", err=True)
        sys.exit(EXIT_MISSING)
    summary = summarize(
        snapshot.replay,
        ledger=str(snapshot.path),
        last_event_at=snapshot.last_event_at,
        planned=snapshot.planned,
    )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        for line in status_lines(summary):
            click.echo(line)


def _dry_run(
    manifest: Path,
    model: str | None,
    out: str | None,
    overrides: dict[str, Any],
    retry_failed: bool,
    scaling: dict[str, Any],
) -> None:
    """Everything up to the first request: validation, the resume plan, cost and time."""
    with _exit_on_errors():
        loaded = load_manifest(manifest, model=model, overrides=overrides)
        scan = loaded.scan(sample=0)
        if not scan.ok:
            _report_invalid(scan.problems, scan.total_problems, checked=scan.count)
        plan = plan_resume(loaded, out, retry_failed=retry_failed, **scaling)
    for line in dry_run_lines(loaded, plan):
        click.echo(line)


main.add_command(merge)


@contextlib.contextmanager
def _exit_on_errors() -> Iterator[None]:
    """The exit codes of `run`: 3 for input the user must fix, 2 for a ledger that stops us."""
    try:
        yield
    except ManifestError as exc:
        _report_invalid(exc.problems, exc.total)
    except ValueError as exc:  # SettingsError, a missing API key
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    except LedgerError as exc:
        click.echo(f"stopped: {exc} (nothing more was submitted)", err=True)
        sys.exit(EXIT_STOPPED)
