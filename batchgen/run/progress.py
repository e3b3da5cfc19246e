"""Watching a run: a live line in a terminal, JSON status lines everywhere else.

An overnight run is looked at twice — a minute after it starts and in the morning — often through
nohup or a log file, where a redrawn bar is noise. So a terminal gets a `rich` live display and
anything else gets one compact JSON object per interval, the same figures as `summary.snapshot`.
Without a stream (a program calling `run_manifest`) the JSON lines go to the `batchgen` logger
at INFO: a library is quiet unless its caller configures logging.

The live line fits the terminal (80 columns too): the least useful figures are dropped first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

__all__ = ["Reporter", "render_line"]

log = logging.getLogger("batchgen")


class Reporter:
    """Runs alongside the engine; `mode` is live (a terminal), json (lines on `stream`), log
    (the same lines to the `batchgen` logger) or off (--quiet)."""

    def __init__(
        self,
        sample: Callable[[], dict[str, Any]],
        *,
        mode: str,
        interval: float,
        stream: TextIO | None = None,
    ) -> None:
        self.sample = sample
        self.mode = mode
        self.interval = interval
        self.stream = stream
        self.lines = 0

    @staticmethod
    def choose(quiet: bool, stream: TextIO | None) -> str:
        if quiet:
            return "off"
        if stream is None:
            return "log"
        return "live" if stream.isatty() else "json"

    async def run(self) -> None:
        """Report until cancelled; a last report is made on the way out."""
        if self.mode == "off":
            return
        if self.mode == "live":
            console = Console(file=self.stream)

            def line() -> Text:
                # one column spare: a line as wide as the terminal wraps on some of them
                return _render(self.sample(), console.width - 1)

            with Live(line(), console=console, refresh_per_second=4) as live:
                try:
                    while True:
                        await asyncio.sleep(0.25)
                        live.update(line())
                finally:
                    live.update(line())
            return
        try:
            while True:
                await asyncio.sleep(self.interval)
                self._json_line()
        finally:
            self._json_line()

    def _json_line(self) -> None:
        figures = {"t": round(time.time(), 1), "event": "status", **self.sample()}
        text = json.dumps(figures, separators=(",", ":"))
        if self.stream is None:
            log.info("%s", text)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()
        self.lines += 1


def render_line(s: dict[str, Any], width: int) -> str:
    """The live line in at most `width` columns: the parts in order of use, the first always
    kept, the later ones only while they fit."""
    eta = s["eta_seconds"]
    projected = s["projected_usd"]
    spend = f"${s['spend_usd']:,.2f}"
    if projected is not None:
        spend += f"/~${projected:,.0f}" if projected >= 1000 else f"/~${projected:.2f}"
    reused = s.get("reused", 0)
    parts = [
        f"done {s['completed']:,}/{s['jobs'] - s['already_done'] - reused:,}",
        *([f"reused {reused:,} (saved ${s['saved_usd']:.2f})"] if reused else []),
        f"failed {s['failed']:,}",
        f"ETA {_duration(eta) if eta is not None else '?'}",
        f"in flight {s['in_flight']:,}",
        f"{s['images_per_minute']:,.1f} img/min",
        spend,
        f"waiting {s['waiting']:,}",
        f"429s {s['rate_limited']:,}",
        f"{s['api_calls_per_job']:.2f} calls/job",
    ]
    line = parts[0]
    for part in parts[1:]:
        if len(line) + 3 + len(part) <= width:
            line += " · " + part
    return line


def _render(s: dict[str, Any], width: int = 200) -> Text:
    """The live line as rich Text, never wrapped."""
    return Text(render_line(s, width), no_wrap=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
