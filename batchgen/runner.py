"""The Python API of a run: a manifest in, images + ledger + metadata out, an exit code back.

`run_manifest` is what `batchgen run` calls; everything the CLI can do is reachable from here.
With `emulator=True` it starts the built-in emulator in-process, with time compressed so a
minute of rate limit lasts `EMULATOR_MINUTE` seconds: the manifest's `rpm` is then enforced by a
strict server, and a quickstart finishes in seconds, with no key and no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from batchgen.client import DEFAULT_API_ROOT, ApiClient
from batchgen.emulator import Emulator, EmulatorConfig
from batchgen.engine import Engine, EngineConfig, RunStats
from batchgen.errors import LedgerError
from batchgen.jobs import Job
from batchgen.ledger import LEDGER_NAME, LedgerWriter
from batchgen.manifest import Manifest, load_manifest

__all__ = [
    "EMULATOR_MINUTE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_STOPPED",
    "RunResult",
    "completed_job_ids",
    "run_manifest",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # some jobs failed
EXIT_STOPPED: Final = 2  # auth, credits, model gone
EXIT_INVALID: Final = 3  # the manifest or a setting is invalid
EXIT_INTERRUPTED: Final = 130
EMULATOR_MINUTE: Final = 1.0  # seconds that a rate-limit minute lasts against --emulator
EMULATOR_KEY: Final = "emulator-key"


@dataclass(frozen=True)
class RunResult:
    stats: RunStats
    out_dir: Path
    skipped: int  # completed in an earlier run of the same folder
    interrupted: bool
    server: dict[str, Any] | None = None  # the emulator's counters, when it was used

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.stats.stop_reason is not None:
            return EXIT_STOPPED
        return EXIT_FAILED if sum(self.stats.failed.values()) else EXIT_OK


async def run_manifest(
    manifest: Path | Manifest,
    *,
    api_key: str | None = None,
    out: Path | None = None,
    model: str | None = None,
    base_url: str = DEFAULT_API_ROOT,
    overrides: Mapping[str, Any] | None = None,
    emulator: bool | EmulatorConfig = False,
    handle_signals: bool = False,
) -> RunResult:
    """Run every job of `manifest` not already completed in the output folder.

    Raises ManifestError (nothing was sent) when the manifest is invalid, ValueError when no API
    key is given for a real server.
    """
    loaded = (
        manifest
        if isinstance(manifest, Manifest)
        else load_manifest(manifest, model=model, overrides=overrides)
    )
    scan = loaded.scan(sample=0)
    if not scan.ok:
        raise scan.error()
    settings = loaded.settings
    out_dir = out if out is not None else Path(settings.output)
    done = completed_job_ids(out_dir / LEDGER_NAME)
    window = 60.0
    async with contextlib.AsyncExitStack() as stack:
        emu: Emulator | None = None
        if emulator is not False:
            window = EMULATOR_MINUTE
            config = (
                emulator
                if isinstance(emulator, EmulatorConfig)
                else EmulatorConfig(
                    rpm=max(1, round(settings.rpm)),
                    rate_window=window,
                    count_polls=settings.count_polls,
                )
            )
            emu = await stack.enter_async_context(Emulator(config))
            base_url, api_key = emu.base_url, config.keys[0]
        if not api_key:
            raise ValueError("no API key: set SEGMIND_API_KEY or pass --key-file (or --emulator)")
        api = await stack.enter_async_context(ApiClient(api_key, base_url))
        ledger = await stack.enter_async_context(LedgerWriter(out_dir / LEDGER_NAME))
        schema = loaded.schema
        typical = schema.typical_seconds if schema else 30.0
        if emu is not None:
            typical = emu.config.latency
        engine = Engine(
            api,
            ledger,
            EngineConfig(
                out_dir=out_dir,
                concurrency=settings.concurrency,
                rpm=settings.rpm,
                window=window,
                count_polls=settings.count_polls,
                filename=settings.filename,
                typical_seconds=typical,
            ),
        )
        await ledger.append("run", model=loaded.model, manifest=str(loaded.path))
        skipped = [0]
        interrupted = False
        async with _signals(engine, handle_signals) as signalled:
            await engine.run(_pending(loaded.jobs(), done, skipped))
            interrupted = signalled()
        return RunResult(
            engine.stats,
            out_dir,
            skipped[0],
            interrupted,
            emu.stats(detail=False) if emu is not None else None,
        )


def _pending(jobs: Iterator[Job], done: set[str], skipped: list[int]) -> Iterator[Job]:
    for job in jobs:
        if job.id in done:
            skipped[0] += 1
            continue
        yield job


def completed_job_ids(ledger: Path) -> set[str]:
    """Jobs recorded as completed whose file is still there (the full replay is in `resume`)."""
    if not ledger.exists():
        return set()
    done: dict[str, str] = {}
    with ledger.open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except ValueError:
                if raw.endswith(b"\n"):
                    raise LedgerError(f"{ledger}: damaged line {raw[:80]!r}") from None
                break  # a torn last line from a crash: ignored
            if record.get("event") == "completed":
                done[record["job"]] = record["file"]
            elif record.get("event") in ("submitted", "failed") and record.get("job") in done:
                del done[record["job"]]
    root = ledger.parent
    return {job for job, file in done.items() if (root / file).exists()}


@contextlib.asynccontextmanager
async def _signals(engine: Engine, enabled: bool) -> AsyncIterator[Any]:
    """First SIGINT/SIGTERM: stop submitting, let paid jobs finish. Second: exit at once."""
    seen = [0]
    if not enabled:
        yield lambda: False
        return
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        seen[0] += 1
        if seen[0] == 1:
            engine.stop("interrupted: finishing the jobs in flight (press Ctrl-C again to quit)")
        else:
            os._exit(EXIT_INTERRUPTED)  # the ledger is consistent after every append

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield lambda: seen[0] > 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
