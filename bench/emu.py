"""The emulator in its own process, for the benchmarks.

    python bench/emu.py '{"workers": 100, "latency": 2.0, ...}'   # EmulatorConfig fields as JSON

It prints the emulator's "listening on URL" line and serves until SIGTERM. `EmulatorProcess`
starts one, reads the URL, fetches `/_emulator/stats?detail=0` and stops it. A JSON config (not
the `batchgen emulator` CLI) is used because a few knobs the benchmarks need, such as the reset
time announced by an injected 429, have no CLI flag.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from types import TracebackType
from typing import Any

import httpx

from batchgen.emulator import EmulatorConfig, parse_fault, serve

__all__ = ["EmulatorProcess", "config_from_json"]


def config_from_json(text: str) -> EmulatorConfig:
    fields: dict[str, Any] = json.loads(text)
    fields["faults"] = tuple(parse_fault(rule) for rule in fields.get("faults", ()))
    return EmulatorConfig(**fields)


class EmulatorProcess:
    """A fresh emulator process per measurement, so its counters belong to one client."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("port", 0)
        self.config = config
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, json.dumps(self.config)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            self._proc.kill()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = match[1]
        return self

    def stats(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/_emulator/stats", params={"detail": "0"}, timeout=30)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _main() -> None:
    config = config_from_json(sys.argv[1])
    asyncio.run(serve(config, announce=lambda text: print(text, flush=True)))


if __name__ == "__main__":
    _main()
