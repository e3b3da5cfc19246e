"""Watching a run: a live line in a terminal, JSON status lines everywhere else.

An overnight run is looked at twice — a minute after it starts and in the morning — often through
nohup or a log file, where a redrawn bar is noise. So a terminal gets a `rich` live display and
anything else gets one compact JSON object per interval, the same figures as `summary.snapshot`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

__all__ = ["Reporter"]


class Reporter:
    """Runs alongside the engine; `mode` is live (a terminal), json (lines) or off (--quiet)."""

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
        self.stream = stream or sys.stderr
        self.lines = 0

    @staticmethod
    def choose(quiet: bool, stream: TextIO) -> str:
        if quiet:
            return "off"
        return "live" if stream.isatty() else "json"

    async def run(self) -> None:
        """Report until cancelled; a last report is made on the way out."""
        if self.mode == "off":
            return
        if self.mode == "live":
            console = Console(file=self.stream)
            with Live(_render(self.sample()), console=console, refresh_per_second=4) as live:
                try:
                    while True:
                        await asyncio.sleep(0.25)
                        live.update(_render(self.sample()))
                finally:
                    live.update(_render(self.sample()))
            return
        try:
            while True:
                await asyncio.sleep(self.interval)
                self._json_line()
        finally:
            self._json_line()

    def _json_line(self) -> None:
        figures = {"t": round(time.time(), 1), "event": "status", **self.sample()}
        self.stream.write(json.dumps(figures, separators=(",", ":")) + "\n")
        self.stream.flush()
        self.lines += 1


def _render(s: dict[str, Any]) -> Text:
    eta = s["eta_seconds"]
    projected = s["projected_usd"]
    line = (
        f"done {s['completed']}/{s['jobs'] - s['already_done'] - s.get('reused', 0)}"
        + (f" · reused {s['reused']} (saved ${s['saved_usd']:.2f})" if s.get("reused") else "")
        + f" · failed {s['failed']} · in flight {s['in_flight']} · waiting {s['waiting']}"
        f" · {s['images_per_minute']:.1f} img/min"
        f" · ETA {_duration(eta) if eta is not None else '?'}"
        f" · ${s['spend_usd']:.2f}"
        + (f" of ~${projected:.2f}" if projected is not None else "")
        + f" · 429s {s['rate_limited']} · {s['api_calls_per_job']:.2f} calls/job"
    )
    return Text(line)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
