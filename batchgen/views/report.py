"""`batchgen report`: `DIR/index.html`, one static page to look at a run with no server.

Everything the page needs is inside it (thumbnails as `data:` JPEGs, the CSS and a few lines of
script), so it opens from disk, offline, and can be mailed or archived as one file; each
thumbnail links to the full image next to it. Thumbnails are not written as files into DIR
because `datasets`' imagefolder would pick them up as extra images.

Every value shown comes from user text (prompts, annotations, error messages), so `render_page`
escapes all of it with the stdlib `html` module; a `<script>` in a prompt shows as text.
`render_page` is pure (items and thumbnails in, a string out); `write_report` does the I/O.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from PIL import Image, ImageOps

from batchgen.core.folder import REPORT_NAME
from batchgen.core.jobs import canonical_json
from batchgen.views.gridplan import show_value
from batchgen.views.rundata import Item, RunData, image_path

__all__ = ["REPORT_NAME", "THUMB_SIDE", "render_page", "thumbnail_uri", "write_report"]

THUMB_SIDE: Final = 256


def thumbnail_uri(path: Path, side: int = THUMB_SIDE) -> str | None:
    """A small JPEG of the image at `path` as a `data:` URI, or None if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (side, side))
            small = ImageOps.contain(image.convert("RGB"), (side, side))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_report(data: RunData, *, max_images: int = 5000) -> tuple[Path, int]:
    """Write `data.folder/index.html` atomically; returns its path and the thumbnails shown."""
    completed = [i for i in data.items if i.state == "completed"]
    thumbs: dict[str, str] = {}
    for item in completed[:max_images]:
        path = image_path(data.folder, item.file or "")
        uri = thumbnail_uri(path) if path is not None else None
        if uri is not None:
            thumbs[item.job_id] = uri
    page = render_page(data, thumbs, title=data.folder.resolve().name)
    target = data.folder / REPORT_NAME
    temp = data.folder / f".{REPORT_NAME}.{secrets.token_hex(4)}.part"
    try:
        temp.write_text(page, encoding="utf-8")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target, len(thumbs)


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else show_value(value), quote=True)


def _filters(items: Sequence[Item]) -> dict[str, dict[str, tuple[str, Any]]]:
    """Parameters with more than one value: name -> canonical key -> (option id, value)."""
    values: dict[str, dict[str, Any]] = {}
    for item in items:
        for name, value in item.params.items():
            values.setdefault(name, {}).setdefault(canonical_json(value), value)
    out: dict[str, dict[str, tuple[str, Any]]] = {}
    for name, seen in values.items():
        if len(seen) > 1 or any(name not in i.params for i in items):
            ordered = sorted(seen.items(), key=lambda kv: _order(kv[1]))
            out[name] = {key: (str(n), value) for n, (key, value) in enumerate(ordered)}
    return out


def _order(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, show_value(value))


def render_page(data: RunData, thumbs: Mapping[str, str], *, title: str) -> str:
    """The whole page; `thumbs` maps job id -> data URI (jobs without one are counted only)."""
    shown = [i for i in data.items if i.state == "completed" and i.job_id in thumbs]
    failed = [i for i in data.items if i.state == "failed"]
    filters = _filters(shown)
    completed = sum(i.state == "completed" for i in data.items)
    parts = [
        _HEAD.replace("{title}", _e(title)),
        f"<h1>{_e(title)}</h1>",
        '<p class="counts">',
        f"{completed} images, {len(failed)} failed",
        f", {data.unfinished} not finished yet" if data.unfinished else "",
        f" ({completed - len(shown)} without a thumbnail)" if completed > len(shown) else "",
        "</p>",
        _constants(shown, filters),
        _filter_bar(filters, len(shown)),
        '<main id="gallery">',
        *(_card(item, thumbs[item.job_id], filters) for item in shown),
        "</main>",
        _failures(failed),
        _summary(data.summary),
        _SCRIPT,
        "</body></html>\n",
    ]
    return "\n".join(p for p in parts if p)


def _constants(items: Sequence[Item], filters: Mapping[str, Any]) -> str:
    if not items:
        return ""
    same = [(k, v) for k, v in items[0].params.items() if k not in filters]
    cells = "".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in same)
    return f'<p class="constants">Same for every image: {cells}</p>' if same else ""


def _filter_bar(filters: Mapping[str, Mapping[str, tuple[str, Any]]], total: int) -> str:
    selects = []
    for name, options in filters.items():
        choices = "".join(
            f'<option value="{_e(oid)}">{_e(_short(show_value(v)))}</option>'
            for oid, v in options.values()
        )
        selects.append(
            f'<label>{_e(name)} <select data-param="{_e(name)}">'
            f'<option value="">all</option>{choices}</select></label>'
        )
    reset = '<button type="button" id="reset">show all</button>' if selects else ""
    return (
        f'<nav class="filters">{"".join(selects)}{reset}'
        f'<span class="shown">showing <b id="shown">{total}</b> of {total} images</span></nav>'
    )


def _card(item: Item, uri: str, filters: Mapping[str, Mapping[str, tuple[str, Any]]]) -> str:
    params = item.params
    keys = {n: opts[canonical_json(params[n])][0] for n, opts in filters.items() if n in params}
    prompt = params.get("prompt")
    rows = "".join(  # what sets this image apart; the rest is listed once, above
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
        for k, v in params.items()
        if k != "prompt" and k in filters
    )
    img = f'<img src="{uri}" alt="{_e(_short(str(prompt or item.job_id)))}">'
    if item.file and image_path(Path("."), item.file) is not None:  # a link never leaves DIR
        img = f'<a href="{_e(quote(item.file, safe="/"))}">{img}</a>'
    return (
        f'<figure class="card" data-f="{_e(json.dumps(keys))}" data-job="{_e(item.job_id)}">'
        f'{img}<figcaption><p class="prompt">{_e(prompt if prompt is not None else "")}</p>'
        f'<table class="params">{rows}<tr><th>id</th><td>{_e(item.job_id)}</td></tr></table>'
        "</figcaption></figure>"
    )


def _failures(failed: Sequence[Item]) -> str:
    if not failed:
        return '<section id="failures"><h2>Failures</h2><p>None.</p></section>'
    rows = "".join(
        f"<tr><td>{_e(i.job_id)}</td><td>{_e(i.params.get('prompt', ''))}</td>"
        f'<td>{_e(_params_text(i.params))}</td><td class="error">{_e(i.error or "")}</td></tr>'
        for i in failed
    )
    return (
        f'<section id="failures"><h2>Failures ({len(failed)})</h2><table>'
        "<tr><th>job</th><th>prompt</th><th>parameters</th><th>error</th></tr>"
        f"{rows}</table></section>"
    )


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={show_value(v)}" for k, v in params.items() if k != "prompt")


def _summary(summary: Mapping[str, Any] | None) -> str:
    if summary is None:
        return '<section id="summary"><h2>Run summary</h2><p>No summary.json yet.</p></section>'
    rows = []
    for key, value in summary.items():
        shown = (
            f"<pre>{_e(json.dumps(value, indent=1, ensure_ascii=False))}</pre>"
            if isinstance(value, dict | list)
            else _e(value)
        )
        rows.append(f"<tr><th>{_e(key)}</th><td>{shown}</td></tr>")
    return f'<section id="summary"><h2>Run summary</h2><table>{"".join(rows)}</table></section>'


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_HEAD: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - batchgen report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{margin:.2em 0}.counts{color:#555}.constants span{margin-right:1.2em}
.filters{position:sticky;top:0;background:#fafafa;padding:.6em 0;border-bottom:1px solid #ddd;
display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;z-index:1}
.shown{margin-left:auto}#gallery{display:grid;gap:12px;margin-top:12px;
grid-template-columns:repeat(auto-fill,minmax(270px,1fr))}
.card{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}
.card[hidden]{display:none}.card img{display:block;max-width:100%;margin:auto}
.prompt{margin:.4em 0;font-weight:600}.params{font-size:12px;border-collapse:collapse}
.params th{text-align:left;color:#666;font-weight:normal;padding-right:.8em}
table{border-collapse:collapse}#failures td,#failures th,#summary td,#summary th{
border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
.error{color:#a00}pre{margin:0;font-size:12px;white-space:pre-wrap}
</style></head><body>"""

_SCRIPT: Final = """<script>
(function () {
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-param]"));
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  function apply() {
    var shown = 0;
    cards.forEach(function (card) {
      var keys = JSON.parse(card.getAttribute("data-f"));
      var ok = selects.every(function (s) {
        return s.value === "" || keys[s.getAttribute("data-param")] === s.value;
      });
      card.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = String(shown);
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  var reset = document.getElementById("reset");
  if (reset) {
    reset.addEventListener("click", function () {
      selects.forEach(function (s) { s.value = ""; });
      apply();
    });
  }
})();
</script>"""
