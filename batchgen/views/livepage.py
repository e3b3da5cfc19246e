"""The one page of the dashboard, filled in for a server (`serve`) or as a snapshot (`report`).

`views/page/` holds the page (index.html, page.css, page.js) as package data: plain files, no
build step, nothing fetched from a network. The server links the CSS and script; the snapshot
inlines them and embeds the data the server would stream, so the two are the same page.

The embedded data is JSON inside a `<pre hidden>`, HTML-escaped: the parser turns it back into
text and the script reads `textContent`, so no user string is ever markup (a prompt holding
`</pre><script>` is just characters). The few sentences filled into the HTML are escaped too.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final, Literal

__all__ = ["ASSETS", "asset", "render"]

ASSETS: Final = {"page.css": "text/css", "page.js": "text/javascript"}


def asset(name: str) -> str:
    """One file of the page, as text (only the names in ASSETS and index.html)."""
    if name not in ASSETS and name != "index.html":
        raise KeyError(name)
    return resources.files("batchgen.views").joinpath("page", name).read_text(encoding="utf-8")


def render(
    mode: Literal["live", "static"], figures: Mapping[str, Any], data: Mapping[str, Any] | None
) -> str:
    """The page: `figures` gives the title and the sentences shown before any script runs."""
    if mode == "live":
        style = '<link rel="stylesheet" href="static/page.css">'
        script = '<script src="static/page.js"></script>'
        embedded = ""
    else:
        script_text = asset("page.js")
        if "</script" in script_text.lower():  # pragma: no cover - a guard on our own file
            raise ValueError("page.js must not contain a closing script tag")
        style = f"<style>\n{asset('page.css')}</style>"
        script = f"<script>\n{script_text}</script>"
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        embedded = f'<pre id="bg-data" hidden>{html.escape(text)}</pre>'
    fill = {
        "title": html.escape(str(figures.get("title", ""))),
        "counts": html.escape(figures["text"]["counts"]),
        "failures": html.escape(figures["text"]["failures"]),
        "mode": mode,
        "style": style,
        "data": embedded,
        "script": script,
    }
    # One pass: a filled-in value (a title holding "{{script}}") is never read as a placeholder.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fill[m.group(1)], asset("index.html"))
