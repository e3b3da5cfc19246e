"""The Python API of a run: a manifest in, images + ledger + metadata out, an exit code back.

`run_manifest` is what `batchgen run` calls; everything the CLI can do is reachable from here.
With `emulator=True` it starts the built-in emulator in-process, with time compressed so a
minute of rate limit lasts `EMULATOR_MINUTE` seconds: the manifest's `rpm` is then enforced by a
strict server, and a quickstart finishes in seconds, with no key and no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from batchgen.core.budget import spent_before
from batchgen.core.errors import OutputError
from batchgen.core.folder import PART_ROOT
from batchgen.core.lifecycle import Replay, State
from batchgen.core.littles import AUTO_CEILING
from batchgen.core.runstats import RunStats
from batchgen.core.shard import Shard
from batchgen.core.summary import RunShape, final_summary, snapshot
from batchgen.edges.client import DEFAULT_API_ROOT, ApiClient, Timeouts
from batchgen.edges.ledger import LedgerWriter, load_ledger
from batchgen.edges.parts import PartAllocator
from batchgen.edges.storage import Store
from batchgen.emulator import Emulator, EmulatorConfig
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.manifest.loader import Manifest, load_manifest
from batchgen.models.registry import typical_seconds_of
from batchgen.run.finish import double_charge_list, finish_outputs, write_summary
from batchgen.run.layout import plan_layout
from batchgen.run.progress import Reporter
from batchgen.run.resumeplan import ResumeCounts, count_owned, intact_jobs, owned, work_after_reuse
from batchgen.run.reuse import CatalogOption, open_reuse

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_STATUS_INTERVAL",
    "EMULATOR_MINUTE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_STOPPED",
    "MediaLimits",
    "RunResult",
    "run_manifest",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # some jobs failed
EXIT_STOPPED: Final = 2  # auth, credits, model gone
EXIT_INVALID: Final = 3  # the manifest or a setting is invalid
EXIT_INTERRUPTED: Final = 130
EMULATOR_MINUTE: Final = 1.0  # seconds that a rate-limit minute lasts against --emulator
DEFAULT_GRACE: Final = 120.0  # seconds in-flight jobs get to finish after the first Ctrl-C
DEFAULT_STATUS_INTERVAL: Final = 30.0  # seconds between JSON status lines when not on a terminal


@dataclass(frozen=True)
class RunResult:
    stats: RunStats
    out_dir: Path
    resumed: ResumeCounts
    interrupted: bool
    summary: dict[str, Any]  # also in DIR/summary.json
    server: dict[str, Any] | None = None  # the emulator's counters, when it was used

    @property
    def skipped(self) -> int:
        """Jobs completed by an earlier run of the same folder, files intact."""
        return self.resumed.done

    @property
    def exit_code(self) -> int:
        return int(self.summary["exit_code"])


@dataclass(frozen=True)
class MediaLimits:
    """What an image download may cost: bytes, seconds (redirects included), and whether
    private addresses are allowed when the API is not on one (see `mediaurl`)."""

    max_bytes: int = 64 * 1024 * 1024
    deadline: float = 300.0
    allow_private: bool = False


async def run_manifest(
    manifest: Path | Manifest,
    *,
    api_key: str | None = None,
    out: Path | str | None = None,
    model: str | None = None,
    base_url: str = DEFAULT_API_ROOT,
    overrides: Mapping[str, Any] | None = None,
    emulator: bool | EmulatorConfig = False,
    retry_failed: bool = False,
    handle_signals: bool = False,
    grace: float = DEFAULT_GRACE,
    expect_seconds: float | None = None,
    quiet: bool = False,
    status_interval: float = DEFAULT_STATUS_INTERVAL,
    status_stream: TextIO | None = None,
    shard: Shard | None = None,
    ledger_dir: Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
    media: MediaLimits | None = None,
    watch: Callable[[Path, Store, Callable[[], dict[str, Any]]], None] | None = None,
    catalog: CatalogOption = None,
    reuse_from: Sequence[Path | str] = (),
    reuse: bool = True,
) -> RunResult:
    """Run every job of `manifest` that the output folder's ledger does not show as done.

    `watch(root, store, sample)` is called once in the run's loop when it starts (the dashboard).
    `shard`: run only the jobs whose id hashes to it, with the shard's own ledger (`layout.py`).
    `out` may be an fsspec URL (`s3://bucket/prefix`, with `ledger_dir` and `storage_options`).
    `catalog` (default file, a path, or False), `reuse_from`, `reuse`: see `reuse.py`.

    Raises ManifestError (nothing was sent) when the manifest is invalid, ValueError when no API
    key is given for a real server or the output cannot be used (StorageError), LedgerError when
    the ledger is damaged or cannot be written.
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
    layout = plan_layout(out if out is not None else settings.output, shard, ledger_dir,
                         storage_options)  # fmt: skip
    out_dir = layout.state_dir
    if emulator is False and not api_key:
        raise ValueError("no API key: set SEGMIND_API_KEY or pass --key-file (or --emulator)")
    with layout.locked():  # one run per folder (or shard): two would pay for everything twice
        ledger_path = layout.ledger_path
        await asyncio.to_thread(layout.restore_ledger)
        past = await asyncio.to_thread(load_ledger, ledger_path)
        await asyncio.to_thread(layout.clean)
        counts = ResumeCounts(runs=past.runs)
        total = scan.count if shard is None else await asyncio.to_thread(count_owned, loaded, shard)
        window = 60.0
        async with contextlib.AsyncExitStack() as stack:
            reuser = await asyncio.to_thread(
                open_reuse, catalog, reuse_from, reuse, storage_options
            )
            stack.callback(reuser.close)
            emu: Emulator | None = None
            if emulator is not False:
                window = EMULATOR_MINUTE
                config = (
                    emulator
                    if isinstance(emulator, EmulatorConfig)
                    else EmulatorConfig(
                        # A fresh seed per run: request ids of a previous in-process emulator must
                        # not collide with this one's when a resumed run polls recorded ids.
                        seed=secrets.randbits(32),
                        rpm=max(1, round(settings.planned_rpm)),
                        rate_window=window,
                        count_polls=settings.count_polls,
                    )
                )
                emu = await stack.enter_async_context(Emulator(config))
                base_url, api_key = emu.base_url, config.keys[0]
            if not api_key:
                raise ValueError(
                    "no API key: set SEGMIND_API_KEY or pass --key-file (or --emulator)"
                )
            limits = media or MediaLimits()
            api = await stack.enter_async_context(
                ApiClient(
                    api_key,
                    base_url,
                    timeouts=Timeouts(media=limits.deadline),
                    max_image_bytes=limits.max_bytes,
                    allow_private_media=limits.allow_private,
                )
            )
            ledger = await stack.enter_async_context(LedgerWriter(ledger_path))
            schema = loaded.schema
            typical = typical_seconds_of(loaded.model)
            if emu is not None:
                typical = emu.config.latency
            if expect_seconds is not None:
                typical = expect_seconds
            engine = Engine(
                api,
                ledger,
                EngineConfig(
                    out_dir=out_dir,
                    store=layout.store,
                    concurrency=settings.fixed_concurrency,
                    rpm=settings.fixed_rpm,
                    rpm_auto=settings.fixed_rpm is None,
                    rpm_start=past.rate,
                    window=window,
                    count_polls=settings.count_polls,
                    filename=settings.filename,
                    parts=_parts(scan.count, settings.folder_size, past, shard),
                    typical_seconds=typical,
                    sync=settings.mode == "sync",
                    price_per_image=settings.price_for(schema),
                    budget_usd=settings.budget_usd,
                    known_latencies=_known_latencies(past),
                    spent_before=spent_before(
                        (j.cost for j in past.jobs.values() if j.state is State.COMPLETED),
                        settings.price_for(schema),
                    ),
                ),
            )
            await ledger.append("run", model=loaded.model, manifest=str(loaded.path))
            intact = await asyncio.to_thread(intact_jobs, past, layout.store)
            works = await work_after_reuse(
                reuser, lambda: owned(loaded.jobs(), shard), past, intact, counts,
                retry_failed=retry_failed, store=layout.store, ledger=ledger, stats=engine.stats,
                filename=settings.filename, parts=engine.config.parts,
                price=settings.price_for(schema),
            )  # fmt: skip
            slots = settings.fixed_concurrency or AUTO_CEILING
            shape = RunShape(total, settings.fixed_rpm or 0.0, window, slots, typical)
            started = time.monotonic()
            stream = status_stream or sys.stderr
            reporter = Reporter(
                lambda: snapshot(
                    engine.stats,
                    shape,
                    counts.done,
                    time.monotonic() - started,
                    settings.price_for(schema),
                ),
                mode=Reporter.choose(quiet, stream),
                interval=status_interval,
                stream=stream,
            )
            if watch is not None:  # `--serve`: the dashboard asks for these figures in this loop
                watch(layout.root, layout.store, lambda: {**reporter.sample(), "budget_usd":
                      settings.budget_usd, "retries": engine.stats.retries})  # fmt: skip
            watching = asyncio.create_task(reporter.run())
            try:
                async with _signals(engine, handle_signals, grace) as signalled:
                    await engine.run(works)
                    interrupted = signalled()
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            wall = time.monotonic() - started
            await asyncio.to_thread(reuser.record, ledger_path, layout.store)
            server = emu.stats(detail=False) if emu is not None else None
        try:
            final = await asyncio.to_thread(finish_outputs, out_dir, owned(loaded.jobs(), shard))
            exit_code = _exit_code(engine.stats, interrupted)
            summary = final_summary(
                engine.stats,
                shape,
                skipped=counts.done,
                failed_earlier=counts.failed,
                removed=counts.removed,
                wall=wall,
                exit_code=exit_code,
                double_charged=double_charge_list(final),
            )
            if shard is not None:
                summary["shard"] = {"index": shard.index, "count": shard.count, "jobs": total}
                summary["price_per_image"] = settings.price_for(schema)  # merge: jobs with no cost
            await asyncio.to_thread(write_summary, out_dir, summary)
            await asyncio.to_thread(layout.publish_state)
        except OSError as exc:  # a full disk: the ledger has everything, the next run rebuilds
            raise OutputError(
                f"the images and the ledger are saved, but metadata.jsonl / summary.json in "
                f"{out_dir} could not be rewritten: {exc}; run the same command again once "
                "there is room"
            ) from None
        return RunResult(engine.stats, out_dir, counts, interrupted, summary, server)


def _known_latencies(past: Replay, keep: int = 256) -> tuple[float, ...]:
    """Submit-to-completed seconds of the latest finished jobs of earlier runs (an upper bound
    of each latency: it includes the download), so a resume plans its polls from them."""
    spans = [
        job.completed_at - job.submitted_at
        for job in past.jobs.values()
        if job.state is State.COMPLETED and job.completed_at and job.submitted_at
    ]
    return tuple(x for x in spans[-keep:] if x >= 0)


def _parts(jobs: int, folder_size: int, past: Replay, shard: Shard | None) -> PartAllocator | None:
    """Subfolders for a run of more than `folder_size` jobs (see `parts.py`); else flat. Shards
    share the images folder but not their counts: each fills its own `data/I-of-N/` parts."""
    if jobs <= folder_size:
        return None
    root = PART_ROOT if shard is None else f"{PART_ROOT}/{shard.label}"
    return PartAllocator(folder_size, (j.file for j in past.jobs.values() if j.file), root)


def _exit_code(stats: RunStats, interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if stats.stop_reason is not None:
        return EXIT_STOPPED
    return EXIT_FAILED if sum(stats.failed.values()) else EXIT_OK


@contextlib.asynccontextmanager
async def _signals(engine: Engine, enabled: bool, grace: float) -> AsyncIterator[Any]:
    """First SIGINT/SIGTERM: stop submitting, let paid jobs finish for up to `grace` seconds.
    Second (or the grace running out): exit at once. Every ledger append is durable when it
    returns, so an exit at any point leaves a ledger the next run resumes from."""
    seen = [0]
    timers: list[asyncio.TimerHandle] = []
    if not enabled:
        yield lambda: False
        return
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        seen[0] += 1
        if seen[0] == 1:
            engine.stop(
                f"interrupted: finishing the jobs in flight for up to {grace:g} s "
                "(press Ctrl-C again to quit now; run the same command to resume)"
            )
            timers.append(loop.call_later(grace, _exit_now))
        else:
            _exit_now()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield lambda: seen[0] > 0
    finally:
        for timer in timers:  # the run ended within its grace period: no late exit
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _exit_now() -> None:
    sys.stderr.write("batchgen: stopped at once; run the same command to resume\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)
