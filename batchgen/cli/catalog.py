"""`batchgen catalog ...` (upkeep of the catalogue of generated images) and the reuse flags of
`run` and `validate` (`reuse_options`). What the catalogue is: `edges/catalog.py`; how a run
uses it: `run/reuse.py`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from batchgen.edges.catalog import Catalog, CatalogError, Entry, default_catalog_path
from batchgen.edges.ledgerindex import folder_ledgers, index_folder
from batchgen.edges.storage import LocalStore
from batchgen.manifest.estimate import estimate
from batchgen.manifest.loader import Manifest
from batchgen.run.reuse import open_reuse
from batchgen.run.reuseplan import count_reusable

__all__ = ["catalog", "reuse_kwargs", "reuse_lines", "reuse_options"]

F = TypeVar("F", bound=Callable[..., Any])
EXIT_DAMAGED: Final = 2
EXIT_INVALID: Final = 3
_KEYS: Final = ("catalog_path", "no_catalog", "reuse_from", "no_reuse")


def reuse_options(command: F) -> F:
    """`--catalog PATH`, `--no-catalog`, `--reuse-from DIR` (repeatable), `--no-reuse`."""
    options = [
        click.option(
            "--catalog",
            "catalog_path",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Catalogue of generated images [default: $BATCHGEN_CATALOG, else "
            "$XDG_CACHE_HOME/batchgen/catalog.sqlite or ~/.cache/batchgen/catalog.sqlite].",
        ),
        click.option("--no-catalog", is_flag=True, help="Neither read nor write the catalogue."),
        click.option(
            "--reuse-from",
            multiple=True,
            type=click.Path(path_type=Path, file_okay=False, exists=True),
            help="Also reuse images from this output folder (repeatable).",
        ),
        click.option("--no-reuse", is_flag=True, help="Generate everything: reuse nothing."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def reuse_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    """Pop the reuse flags out of a command's keywords; the run_manifest/plan_resume keywords."""
    path, off, sources, no_reuse = (flags.pop(key) for key in _KEYS)
    return {
        "catalog": False if off else path,
        "reuse_from": tuple(sources),
        "reuse": not no_reuse,
    }


def reuse_lines(
    manifest: Manifest, jobs: Mapping[str, int], catalog: Any, reuse_from: Any, reuse: bool
) -> list[str]:
    """For `validate`: how many of the `jobs` (by model) the catalogue already has (checked),
    what that saves, and what the rest cost, each priced by its own model."""
    with open_reuse(catalog, reuse_from, reuse, read_only=True) as reuser:
        if not reuser.sources:
            return []
        ids, saved, reused = count_reusable(reuser, manifest.jobs(), manifest.settings.price_of)
    left = {model: max(0, n - reused[model]) for model, n in jobs.items()}
    pay = sum(left.values())
    price = estimate(left or {manifest.model: 0}, manifest.settings).cost_usd
    cost = f"${price:,.2f}" if price is not None else "cost unknown"
    return [
        f"catalogue: {len(ids):,} job(s) already generated, reused at no cost "
        f"(saves ${saved:,.2f}); {pay:,} to pay for ({cost})"
    ]


@click.group()
def catalog() -> None:
    """The catalogue of images already generated (so nothing is paid for twice)."""


def _catalog_option(command: F) -> F:
    return click.option(
        "--catalog",
        "path",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The catalogue file [default: as for `run`].",
    )(command)


def _open(path: Path | None, *, create: bool = True) -> Catalog:
    target = path or default_catalog_path()
    if target is None:
        click.echo("error: the catalogue is off (BATCHGEN_CATALOG=off); pass --catalog", err=True)
        sys.exit(EXIT_INVALID)
    try:
        return Catalog(target, create=create)
    except FileNotFoundError:
        click.echo(f"error: no catalogue at {target} (runs create it)", err=True)
        sys.exit(EXIT_INVALID)
    except CatalogError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_DAMAGED)


def _folders(folders: tuple[Path, ...]) -> None:
    for folder in folders:
        if not folder_ledgers(folder):
            click.echo(f"error: {folder}: no ledger.jsonl (is it a run's --out?)", err=True)
            sys.exit(EXIT_INVALID)


@catalog.command("add")
@click.argument("folders", metavar="DIR...", nargs=-1, required=True,
                type=click.Path(path_type=Path, file_okay=False, exists=True))  # fmt: skip
@_catalog_option
@click.option(
    "--images",
    metavar="URL",
    help="Where these ledgers' images are, for an s3:// run (DIR is its --ledger-dir).",
)
def add(folders: tuple[Path, ...], path: Path | None, images: str | None) -> None:
    """Index output folders (from their ledgers) so later runs reuse their images."""
    _folders(folders)
    with _open(path) as cat:
        for folder in folders:
            try:
                added = index_folder(cat, folder, images=images)
            except CatalogError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(EXIT_DAMAGED)
            click.echo(f"{folder}: {added:,} image(s) added to {cat.name}")


@catalog.command("stats")
@_catalog_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats(path: Path | None, as_json: bool) -> None:
    """Rows, images, folders, bytes and money in the catalogue; checks its pages first."""
    with _open(path, create=False) as cat:
        problem = cat.integrity()
        if problem is not None:
            click.echo(f"error: {cat.damaged(ValueError(problem))}", err=True)
            sys.exit(EXIT_DAMAGED)
        try:
            figures = cat.stats()
        except CatalogError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_DAMAGED)
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(
        f"{figures['catalog']}: {figures['rows']:,} row(s), {figures['fingerprints']:,} "
        f"distinct image(s) in {figures['locations']:,} location(s), "
        f"{figures['image_bytes'] / 2**20:,.1f} MiB, first paid ${figures['cost_usd']:,.2f}"
    )


@catalog.command("prune")
@_catalog_option
@click.option("--verify", is_flag=True, help="Also hash every local file (default: size only).")
def prune(path: Path | None, verify: bool) -> None:
    """Drop rows whose image is gone (or, with --verify, changed). Remote rows are kept."""
    with _open(path, create=False) as cat:
        try:
            kept, dropped = _prune(cat, verify)
        except CatalogError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_DAMAGED)
    click.echo(f"{cat.name}: {dropped:,} stale row(s) dropped, {kept:,} kept")


def _prune(cat: Catalog, verify: bool) -> tuple[int, int]:
    def gone(entry: Entry) -> bool:
        if "://" in entry.location:
            return False  # not checked here: a run checks (and drops) remote rows it uses
        store = LocalStore(Path(entry.location))
        if verify:
            return not store.intact(entry.file, entry.sha256)
        try:
            size = store.path(entry.file).stat().st_size
            return entry.size is not None and size != entry.size
        except OSError:
            return True

    def chunks() -> Iterator[list[Entry]]:
        batch: list[Entry] = []
        for entry in cat.entries():
            batch.append(entry)
            if len(batch) >= 2000:
                yield batch
                batch = []
        yield batch

    kept = dropped = 0
    with ThreadPoolExecutor(8) as pool:
        for batch in chunks():  # drops behind the cursor: the pages ahead are unchanged
            stale = [e for e, bad in zip(batch, pool.map(gone, batch), strict=True) if bad]
            dropped += cat.drop(stale)
            kept += len(batch) - len(stale)
    return kept, dropped


@catalog.command("rebuild")
@click.argument("folders", metavar="DIR...", nargs=-1, required=True,
                type=click.Path(path_type=Path, file_okay=False, exists=True))  # fmt: skip
@_catalog_option
def rebuild(folders: tuple[Path, ...], path: Path | None) -> None:
    """Start the catalogue again from these folders' ledgers (the old file is moved aside)."""
    _folders(folders)
    target = path or default_catalog_path()
    if target is None:
        click.echo("error: the catalogue is off (BATCHGEN_CATALOG=off); pass --catalog", err=True)
        sys.exit(EXIT_INVALID)
    if target.exists():
        aside = target.with_name(f"{target.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        target.replace(aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        click.echo(f"moved {target} aside to {aside}")
    with _open(target) as cat:
        for folder in folders:
            click.echo(f"{folder}: {index_folder(cat, folder, full=True):,} image(s) indexed")
