"""`batchgen grid | report | export`: looking at a run folder, never changing what a run owns.

These commands only read the ledger (as `status` does: safe while a run is going) and the images,
and write their own outputs (a PNG, `DIR/index.html`, a Parquet file). They cost no credits.
Exit codes follow `run`: 0 done, 2 the folder cannot be read (damaged ledger, I/O), 3 bad input.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

import click

if TYPE_CHECKING:
    from batchgen.views.servehost import Beside

from batchgen.core.folder import LEDGER_NAME, SHARDS_DIR
from batchgen.core.lifecycle import LedgerDamage
from batchgen.views.gridplan import DEFAULT_MAX_PANELS, GridError, parse_where, plan_grid
from batchgen.views.rundata import RunData, load_run

__all__ = ["dashboard_beside", "export", "grid", "linger", "report", "serve"]

EXIT_IO: Final = 2
EXIT_INPUT: Final = 3


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _errors(folder: Path) -> Iterator[None]:
    try:
        yield
    except GridError as exc:
        _fail(EXIT_INPUT, str(exc))
    except LedgerDamage as exc:
        _fail(EXIT_IO, f"{folder / LEDGER_NAME} is damaged at {exc}")
    except FileNotFoundError as exc:
        if exc.filename == str(folder / LEDGER_NAME):
            _fail(EXIT_INPUT, f"no ledger at {folder / LEDGER_NAME} (is DIR a run's --out?)")
        _fail(EXIT_IO, str(exc))
    except OSError as exc:
        _fail(EXIT_IO, str(exc))


def _note(data: RunData) -> str:
    parts = []
    if data.unfinished:
        parts.append(f"{data.unfinished} job(s) not finished yet")
    if data.unplaced_failures:
        parts.append(f"{data.unplaced_failures} failed job(s) without recorded parameters")
    return "; ".join(parts)


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--x", "x", required=True, help="Parameter across (columns), e.g. guidance.")
@click.option("--y", "y", required=True, help="Parameter down (rows), e.g. seed.")
@click.option(
    "--where", "where", multiple=True, metavar="PARAM=VALUE", help="Keep only these jobs."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="PNG to write. [default: grid-X-Y.png in the current folder]",
)
@click.option("--thumb", type=click.IntRange(min=32), default=256, show_default=True,
              help="Largest cell side, px.")  # fmt: skip
@click.option("--max-size", type=click.IntRange(min=200), default=6000, show_default=True,
              help="Largest side of the whole sheet, px: cells shrink to fit.")  # fmt: skip
@click.option("--max-panels", type=click.IntRange(min=1), default=DEFAULT_MAX_PANELS,
              show_default=True, help="Panels to tile when other parameters vary.")  # fmt: skip
def grid(
    folder: Path,
    x: str,
    y: str,
    where: tuple[str, ...],
    output: Path | None,
    thumb: int,
    max_size: int,
    max_panels: int,
) -> None:
    """Draw a labelled contact sheet of DIR's images: X across, Y down.

    Uses the images on disk (nothing is generated). Parameters other than X and Y that vary are
    pinned with --where, or tiled into one panel per combination. Failed cells show the error;
    combinations not generated (yet) are crossed out. Works on a run still going.
    """
    from batchgen.views.griddraw import (  # Pillow drawing: only when a grid is asked for
        draw,
        geometry,
    )

    with _errors(folder):
        data = load_run(folder)
        plan = plan_grid(data.items, x, y, parse_where(where), max_panels=max_panels)
        shape = geometry(len(plan.xs), len(plan.ys), len(plan.panels), thumb, max_size)
        sheet = draw(plan, folder, shape, _note(data))
        target = output if output is not None else Path(f"grid-{_safe(x)}-{_safe(y)}.png")
        sheet.save(target, format="PNG", optimize=False)
    click.echo(
        f"wrote {target}: {len(plan.xs)} x {len(plan.ys)} cells"
        f"{f' in {len(plan.panels)} panels' if len(plan.panels) > 1 else ''}, "
        f"{plan.count('image')} images, {plan.count('failed')} failed, "
        f"{plan.count('missing')} not generated; {shape.width} x {shape.height} px"
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "param"


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--max-images", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Thumbnails in the page; the rest are counted.")  # fmt: skip
def report(folder: Path, max_images: int) -> None:
    """Write DIR/index.html: a static page (works offline) of the run's images and failures.

    Thumbnails with each image's prompt and parameters, filters by parameter, the failed jobs
    with their errors, and the run summary. Open it in a browser; no server is needed.
    """
    from batchgen.views.report import write_report

    with _errors(folder):
        if (folder / LEDGER_NAME).exists() or not (folder / SHARDS_DIR).is_dir():
            load_run(folder)  # the errors of a missing or damaged ledger, as grid gives them
        target, shown, failed = write_report(folder, max_images=max_images)
    click.echo(f"wrote {target}: {shown} images, {failed} failed; open it in a browser")


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--parquet", "target", required=True, type=click.Path(path_type=Path,
              dir_okay=False), help="Parquet file to write.")  # fmt: skip
def export(folder: Path, target: Path) -> None:
    """Write DIR's completed images and their metadata to one Parquet file, images embedded.

    The file loads with `datasets.load_dataset("parquet", data_files=...)` (an Image column) or
    any Parquet reader. Needs the export extra: pip install 'batchgen[export]'.
    """
    try:
        from batchgen.views.export import write_parquet
    except ImportError as exc:
        _fail(EXIT_INPUT, f"{exc}; install it with: pip install 'batchgen[export]'")
    with _errors(folder):
        data = load_run(folder)
        count = write_parquet(data, target)
    click.echo(f"wrote {target}: {count} images with their metadata")


@click.command()
@click.argument("folder", metavar="DIR")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (not loopback: open to the network).")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: any free one).")  # fmt: skip
@click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
              help="fsspec option for an s3:// DIR (as for run and merge).")  # fmt: skip
def serve(folder: str, host: str, port: int, storage_option: tuple[str, ...]) -> None:
    """Serve a live dashboard of DIR (a run's --out, local or s3://) until Ctrl-C.

    The page updates by itself while a run is going (server-sent events) and shows a finished
    folder the same way: the run at a glance, the gallery with filters, the sweep grid, the
    failures with the command to retry them, and each shard of a sharded output. Read-only:
    it never writes the ledger or the images (thumbnails are cached in DIR/.thumbs/).
    """
    import asyncio

    from batchgen.edges.storage import StorageError, is_remote, open_store, parse_storage_options
    from batchgen.views.livesource import Source
    from batchgen.views.servehost import hosted, is_loopback, listen, url_of

    try:
        store = open_store(folder, parse_storage_options(storage_option))
    except (StorageError, ValueError) as exc:
        _fail(EXIT_INPUT, str(exc))
    local = None if is_remote(folder) else Path(folder)
    if local is not None and not local.is_dir():
        _fail(EXIT_INPUT, f"{folder} is not a folder (DIR is a run's --out)")
    source = Source(store, name=_public(folder))
    if not is_loopback(host):
        click.echo(f"note: --host {host}: anyone who can reach it sees the run", err=True)
    try:
        sock = listen(host, port)
    except OSError as exc:
        _fail(EXIT_IO, f"cannot listen on {host}:{port}: {exc}")

    async def main() -> None:
        async with hosted(source, sock, interval=0.5 if local else 15.0):
            click.echo(
                f"batchgen dashboard of {_public(folder)} on {url_of(sock)} (Ctrl-C to stop)"
            )
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        click.echo("dashboard stopped")


def _public(location: str) -> str:
    """A location as shown on the page: credentials in a URL (user:secret@) are cut out."""
    scheme, sep, rest = location.partition("://")
    if not sep:
        return location
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def dashboard_beside(port: int | None) -> Beside | None:
    """`run --serve`: the port is taken before the run starts, so a busy one stops nothing."""
    from batchgen.views.servehost import Beside, listen

    if port is None:
        return None
    try:
        beside = Beside(listen("127.0.0.1", port))
    except OSError as exc:
        click.echo(f"error: --serve {port}: cannot listen: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    click.echo(f"batchgen dashboard on {beside.url}", err=True)
    return beside


def linger(beside: Beside, stay: bool | None) -> None:
    """After the run: keep the page up until Ctrl-C (by default only for a person at a terminal;
    a script or nohup gets its exit code at once, and `batchgen serve DIR` shows the same page)."""
    if stay is None:
        stay = sys.stderr.isatty()
    if stay:
        click.echo(f"the dashboard stays up on {beside.url}: press Ctrl-C to stop it", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            beside.wait()
    beside.stop()
