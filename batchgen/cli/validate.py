"""`batchgen validate`: check a manifest offline (count, sample, cost and time); sends nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from batchgen.cli.catalog import reuse_kwargs, reuse_lines, reuse_options
from batchgen.cli.exits import exit_on_errors as _exit_on_errors
from batchgen.cli.exits import report_invalid as _report_invalid
from batchgen.cli.limits import CONCURRENCY, RPM
from batchgen.cli.options import CONCURRENCY_HELP, RUN_RPM_HELP
from batchgen.core.errors import ManifestError
from batchgen.manifest.loader import load_manifest
from batchgen.manifest.settings import SettingsError
from batchgen.run.console import summary_lines

__all__ = ["validate"]


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", help="Model for jobs that do not name one (default: qwen-image).")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Refuse to expand past this many.")
@click.option("--price-per-image", type=click.FloatRange(min=0), help="USD, for the estimate.")
@click.option("--rpm", type=RPM, metavar="auto|N", help=RUN_RPM_HELP)
@click.option("--concurrency", type=CONCURRENCY, metavar="auto|N", help=CONCURRENCY_HELP)
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="How many expanded jobs to print.",
)
@reuse_options
def validate(
    manifest: Path,
    model: str | None,
    max_jobs: int | None,
    price_per_image: float | None,
    rpm: float | str | None,
    concurrency: int | str | None,
    show: int,
    **reuse: Any,
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
    with _exit_on_errors():
        for line in reuse_lines(loaded, scan.models, **reuse_kwargs(reuse)):
            click.echo(line)
