"""`batchgen report`: `DIR/index.html`, the dashboard page as a static snapshot (no server).

The same page as `batchgen serve` (`views/page/`: same HTML, CSS and script), with the data the
server would stream embedded instead, so the two never drift. Everything is inside the one file
(thumbnails as `data:` JPEGs, the CSS, the script, and the sweep grids for every pair of varying
parameters, planned by `gridplan` as `batchgen grid` plans them), so it opens from disk,
offline, and can be mailed or archived; each image links to the full file next to it.
Thumbnails are not written as files into DIR because `datasets`' imagefolder would pick up
visible extra images (the server's cache lives in the hidden `DIR/.thumbs/`).

Every value shown comes from user text (prompts, annotations, error messages): the script
builds the page with `textContent`, and the embedded JSON is HTML-escaped (see `livepage.py`),
so a `<script>` in a prompt shows as text.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from batchgen.core.folder import REPORT_NAME
from batchgen.edges.storage import LocalStore
from batchgen.views.livepage import render
from batchgen.views.livesource import Source
from batchgen.views.livestate import grid_json
from batchgen.views.thumbs import THUMB_SIDE, thumbnail_jpeg

__all__ = ["MAX_GRIDS", "MAX_GRID_CELLS", "REPORT_NAME", "THUMB_SIDE", "snapshot", "write_report"]

MAX_GRIDS: Final = 60  # axis pairs planned ahead; a run varying more than 8 parameters gets fewer
MAX_GRID_CELLS: Final = 50_000  # cells over all the grids embedded


def snapshot(folder: Path, *, max_images: int = 5000) -> tuple[dict[str, Any], int]:
    """The page's data for `folder` as it is now, thumbnails inlined; and how many there are."""
    source = Source(LocalStore(folder), name=folder.resolve().name)
    source.refresh()
    thumbs: dict[str, str] = {}

    def links(file: str) -> dict[str, str | None]:  # a file that did not read: no broken link
        thumb = thumbs.get(file)
        return {"url": quote(file, safe="/") if thumb else None, "thumb": thumb}

    figures = source.figures(None)
    items = source.items_since(0, lambda f: {"url": None, "thumb": None})
    done = [i for i in items if i["state"] == "completed" and i["file"]]
    for item in done[-max_images:]:  # the newest, as the gallery shows them first
        for file in _files(item):  # its images, and its inputs (once each, however many share)
            if file not in thumbs:
                data = source.image(file)
                small = thumbnail_jpeg(data, THUMB_SIDE) if data is not None else None
                if small is not None:
                    thumbs[file] = "data:image/jpeg;base64," + base64.b64encode(small).decode()
    items = [  # the images with a thumbnail, and every failure
        _linked(item, links) if item["file"] in thumbs else item
        for item in items
        if item["file"] in thumbs or item["state"] == "failed"
    ]
    shown = sum(  # images shown: every output of a job with several, inputs not counted
        1 + sum(m["file"] in thumbs for m in i["more"]) for i in items if i["file"] in thumbs
    )
    return {**figures, "items": items, "grids": _grids(source)}, shown


def _files(item: dict[str, Any]) -> list[str]:
    return [item["file"], *(m["file"] for m in item["more"]), *(i["file"] for i in item["inputs"])]


def _linked(item: dict[str, Any], links: Callable[[str], dict[str, str | None]]) -> dict[str, Any]:
    """`item` with links to its files (those without a thumbnail: shown by name only)."""
    return {
        **item,
        **links(item["file"]),
        "more": [{**m, **links(m["file"])} for m in item["more"]],
        "inputs": [{**i, **links(i["file"])} for i in item["inputs"]],
    }


def write_report(folder: Path, *, max_images: int = 5000) -> tuple[Path, int, int]:
    """Write `folder/index.html` atomically; returns its path, the thumbnails, the failed jobs."""
    data, shown = snapshot(folder, max_images=max_images)
    page = render("static", data, data)
    target = folder / REPORT_NAME
    temp = folder / f".{REPORT_NAME}.{secrets.token_hex(4)}.part"
    try:
        temp.write_text(page, encoding="utf-8")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target, shown, int(data["glance"]["failed"])


def _grids(source: Source) -> dict[str, Any]:
    """The sweep view's grids, keyed "x\0y", for the pairs of parameters that vary: as many as
    fit in `MAX_GRID_CELLS` cells (a huge run's page stays openable; the server has them all)."""
    items = source.grid_items()
    values: dict[str, set[str]] = {}
    for item in items:
        for name, value in item.params.items():
            values.setdefault(name, set()).add(repr(value))
    names = [n for n, seen in values.items() if len(seen) > 1]
    grids: dict[str, Any] = {}
    cells = 0
    for x, y in itertools.islice(itertools.permutations(names, 2), MAX_GRIDS):
        plan = grid_json(items, x, y)
        cells += sum(plan.get("counts", {}).values())
        if cells > MAX_GRID_CELLS:
            break
        grids[f"{x}\x00{y}"] = plan
    return grids
