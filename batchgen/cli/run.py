"""`batchgen run`: the flags of a run, handed to `run_manifest` (or to the dry-run plan)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from batchgen.cli.catalog import reuse_kwargs, reuse_options
from batchgen.cli.exits import exit_on_errors as _exit_on_errors
from batchgen.cli.exits import report_invalid as _report_invalid
from batchgen.cli.limits import CONCURRENCY, RPM
from batchgen.cli.options import CONCURRENCY_HELP, RUN_RPM_HELP, read_key
from batchgen.cli.scale import scale_kwargs, scale_options
from batchgen.cli.views import dashboard_beside, linger
from batchgen.edges.client import DEFAULT_API_ROOT
from batchgen.emulator.config import EmulatorConfig
from batchgen.manifest.loader import load_manifest
from batchgen.run.console import dry_run_lines, run_summary_lines
from batchgen.run.resumeplan import plan_resume
from batchgen.run.runner import (
    DEFAULT_GRACE,
    DEFAULT_STATUS_INTERVAL,
    EMULATOR_MINUTE,
    MediaLimits,
    RunOptions,
    run_manifest,
)

__all__ = ["run"]


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", help="Output folder, or an fsspec URL such as s3://bucket/prefix.")
@click.option("--model", help="Model for jobs that do not name one (default: qwen-image).")
@click.option(
    "--base-url",
    default=DEFAULT_API_ROOT,
    show_default=True,
    help="API root; /v1 and /v2 are appended.",
)
@click.option("--concurrency", type=CONCURRENCY, metavar="auto|N", help=CONCURRENCY_HELP)
@click.option("--rpm", type=RPM, metavar="auto|N", help=RUN_RPM_HELP)
@click.option("--count-polls", is_flag=True, default=None, help="Polls count against --rpm too.")
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="File holding the API key (default: $SEGMIND_API_KEY).",
)
@click.option("--emulator", is_flag=True, help="Run against the built-in emulator (no key needed).")
@click.option("--upload-url", help="Host for input uploads (default: Segmind's storage host; "
              "with --base-url or --emulator, the API's own origin).")  # fmt: skip
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
@click.option("--serve", "serve_port", type=click.IntRange(0, 65535), is_flag=False,
              flag_value=8000, default=None, metavar="[PORT]",
              help="A live dashboard on 127.0.0.1:PORT (8000) while the run goes.")  # fmt: skip
@click.option("--serve-linger/--no-serve-linger", default=None,
              help="Keep the dashboard up after the run, until Ctrl-C. "
              "[default: when stderr is a terminal]")  # fmt: skip
@scale_options
@reuse_options
def run(
    manifest: Path,
    out: str | None,
    model: str | None,
    base_url: str,
    concurrency: int | str | None,
    rpm: float | str | None,
    count_polls: bool | None,
    key_file: Path | None,
    emulator: bool,
    upload_url: str | None,
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
    serve_port: int | None,
    serve_linger: bool | None,
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
        logging.getLogger("batchgen").setLevel(logging.INFO)
    with _exit_on_errors():
        scaling = {**reuse_kwargs(scale), **scale_kwargs(**scale)}
    if dry_run:
        latency = expect_seconds or (EmulatorConfig().latency if emulator else None)
        _dry_run(manifest, model, out, overrides, retry_failed, scaling, latency, emulator)
        return
    beside = dashboard_beside(serve_port)
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
            watch=beside.attach if beside is not None else None,
            upload_url=upload_url,
        )
        result = asyncio.run(run_manifest(manifest, dataclasses.replace(options, **scaling)))
    for line in run_summary_lines(result):
        click.echo(line)
    if beside is not None:
        linger(beside, serve_linger)
    sys.exit(result.exit_code)


def _dry_run(
    manifest: Path,
    model: str | None,
    out: str | None,
    overrides: dict[str, Any],
    retry_failed: bool,
    scaling: dict[str, Any],
    latency: float | None = None,
    emulator: bool = False,
) -> None:
    """Everything up to the first request: validation, the resume plan, cost and time (against
    the emulator: its latency, and its minute of `EMULATOR_MINUTE` seconds)."""
    with _exit_on_errors():
        loaded = load_manifest(manifest, model=model, overrides=overrides)
        scan = loaded.scan(sample=0)
        if not scan.ok:
            _report_invalid(scan.problems, scan.total_problems, checked=scan.count)
        plan = plan_resume(loaded, out, retry_failed=retry_failed, **scaling)
    window = EMULATOR_MINUTE if emulator else 60.0
    for line in dry_run_lines(loaded, plan, latency_seconds=latency, window=window):
        click.echo(line)
