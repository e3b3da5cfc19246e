"""The `batchgen` command line: one click group, one small function per subcommand.

Subcommands stay thin: they parse flags and hand over to the library, so everything the CLI can
do is also reachable from Python and testable without a subprocess.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final, NoReturn

import click

from batchgen import __version__
from batchgen.errors import ManifestError, ManifestProblem
from batchgen.manifest import load_manifest
from batchgen.report import summary_lines
from batchgen.settings import SettingsError

__all__ = ["EXIT_INVALID", "main", "validate"]

EXIT_INVALID: Final = 3  # the manifest has problems (distinct from click's 2 for bad usage)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
def main() -> None:
    """Run batches of image-generation jobs against Segmind-style submit-then-poll APIs."""


@main.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", help="Model for jobs that do not name one (default: qwen-image).")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Refuse to expand past this many.")
@click.option("--price-per-image", type=click.FloatRange(min=0), help="USD, for the estimate.")
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), help="Requests per minute.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs in flight at once.")
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


if __name__ == "__main__":  # `python -m batchgen.cli`, used by bench/ to measure a child process
    main()
