"""The Python API of a run: a manifest in, images + ledger + metadata out, an exit code back.

`run_manifest` is what `batchgen run` calls; everything the CLI can do is reachable from here.
With `emulator=True` it starts the built-in emulator in-process, with time compressed so a
minute of rate limit lasts `EMULATOR_MINUTE` seconds: the manifest's `rpm` is then enforced by a
strict server, and a quickstart finishes in seconds, with no key and no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from batchgen.core.errors import OutputError
from batchgen.core.events import RunStarted
from batchgen.core.littles import AUTO_CEILING
from batchgen.core.runstats import RunStats
from batchgen.core.summary import RunShape, final_summary, snapshot
from batchgen.edges.allocator import pin_mmap_threshold
from batchgen.edges.client import DEFAULT_API_ROOT, ApiClient, Timeouts
from batchgen.edges.ledger import LedgerWriter
from batchgen.edges.uploads import upload_root_for
from batchgen.emulator import Emulator, EmulatorConfig
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.manifest.estimate import estimate
from batchgen.manifest.loader import Manifest, load_manifest
from batchgen.run.finish import double_charge_list, finish_outputs, write_summary
from batchgen.run.history import read_history
from batchgen.run.interrupts import EXIT_INTERRUPTED, signals
from batchgen.run.layout import plan_layout
from batchgen.run.limits import limits_line
from batchgen.run.options import (
    DEFAULT_GRACE,
    DEFAULT_STATUS_INTERVAL,
    MediaLimits,
    RunOptions,
    expected_seconds,
    model_seconds,
)
from batchgen.run.progress import Reporter
from batchgen.run.resumeplan import (
    ResumeCounts,
    count_owned,
    owned,
    part_allocator,
    work_after_reuse,
)
from batchgen.run.reuse import open_reuse
from batchgen.run.unused import remove_unused

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
    "RunOptions",
    "RunResult",
    "run_manifest",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # some jobs failed
EXIT_STOPPED: Final = 2  # auth, credits, model gone
EXIT_INVALID: Final = 3  # the manifest or a setting is invalid
EMULATOR_MINUTE: Final = 1.0  # seconds that a rate-limit minute lasts against --emulator


@dataclass(frozen=True)
class RunResult:
    stats: RunStats
    out_dir: Path
    resumed: ResumeCounts
    interrupted: bool
    summary: dict[str, Any]  # also in DIR/summary.json (unless nothing was written)
    server: dict[str, Any] | None = None  # the emulator's counters, when it was used
    written: bool = True  # False: nothing was accepted, and the new folder was removed

    @property
    def skipped(self) -> int:
        """Jobs completed by an earlier run of the same folder, files intact."""
        return self.resumed.done

    @property
    def exit_code(self) -> int:
        return int(self.summary["exit_code"])


async def run_manifest(
    manifest: Path | Manifest, options: RunOptions | None = None, **keywords: Any
) -> RunResult:
    """Run every job of `manifest` that the output folder's ledger does not show as done.

    `options` (see `RunOptions`), or the same fields as keywords (`out=..., emulator=True`);
    keywords given with `options` replace its fields. An unknown keyword is a TypeError.

    Raises ManifestError (nothing was sent) when the manifest is invalid, ValueError when no API
    key is given for a real server or the output cannot be used (StorageError), LedgerError when
    the ledger is damaged or cannot be written.
    """
    pin_mmap_threshold()  # or a long run's buffers fragment the C heap: edges/allocator.py
    opts = options or RunOptions()
    if keywords:
        opts = dataclasses.replace(opts, **keywords)
    return await _run(manifest, opts)


async def _run(manifest: Path | Manifest, o: RunOptions) -> RunResult:
    loaded = (
        manifest
        if isinstance(manifest, Manifest)
        else load_manifest(manifest, model=o.model, overrides=o.overrides)
    )
    scan = loaded.scan(sample=0)
    if not scan.ok:
        raise scan.error()
    settings = loaded.settings
    shard = o.shard
    layout = plan_layout(o.out if o.out is not None else settings.output, shard, o.ledger_dir,
                         o.storage_options)  # fmt: skip
    out_dir = layout.state_dir
    api_key, base_url = o.api_key, o.base_url
    if o.emulator is False and not api_key:
        raise ValueError("no API key: set SEGMIND_API_KEY or pass --key-file (or --emulator)")
    new_folder = not layout.publish and shard is None and not out_dir.exists()
    with layout.locked():  # one run per folder (or shard): two would pay for everything twice
        ledger_path = layout.ledger_path
        await asyncio.to_thread(layout.restore_ledger)
        past = await asyncio.to_thread(read_history, ledger_path, layout.store, writable=True)
        await asyncio.to_thread(layout.clean)
        counts = ResumeCounts(runs=past.states.runs)
        total = scan.count if shard is None else await asyncio.to_thread(count_owned, loaded, shard)
        window = 60.0
        async with contextlib.AsyncExitStack() as stack:
            reuser = await asyncio.to_thread(
                open_reuse, o.catalog, o.reuse_from, o.reuse, o.storage_options
            )
            stack.callback(reuser.close)
            emu: Emulator | None = None
            if o.emulator is not False:
                window = EMULATOR_MINUTE
                config = (
                    o.emulator
                    if isinstance(o.emulator, EmulatorConfig)
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
            limits = o.media or MediaLimits()
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
            emulated = emu.config if emu is not None else False
            expected = expected_seconds(loaded.model, emulated, o.expect_seconds)
            models = scan.models or {loaded.model: scan.count}  # each job by its own model
            seconds = model_seconds(models, emulated, o.expect_seconds)
            price_of = settings.price_of
            if o.on_start is not None:
                o.on_start(limits_line(loaded, o.overrides or {}, expected, seconds))
            sync = settings.mode == "sync"
            elsewhere = base_url != DEFAULT_API_ROOT
            upload_root = upload_root_for(o.upload_url, base_url, api_given=elsewhere)
            engine = Engine(
                api,
                ledger,
                EngineConfig(
                    out_dir=out_dir,
                    store=layout.store,
                    concurrency=settings.fixed_concurrency,
                    rpm=settings.fixed_rpm,
                    rpm_auto=settings.fixed_rpm is None,
                    rpm_start=past.states.rate,
                    window=window,
                    count_polls=settings.count_polls,
                    filename=settings.filename,
                    parts=part_allocator(scan.count, settings.folder_size, past, shard),
                    typical_seconds=expected[0],
                    model_seconds=seconds,
                    sync=sync,
                    price_per_image=settings.price_for(schema),
                    model_prices={model: price_of(model) for model in models},
                    most_images=scan.most_images,
                    budget_usd=settings.budget_usd,
                    known_latencies=past.known_latencies(loaded.model),
                    spent_before=past.spent(price_of, loaded.model),
                    upload_root=upload_root,
                    uploaded=past.states.uploads.get(upload_root, {}),  # good on its host only
                ),
            )
            # `jobs`: the run's total, so `status` can say "N of TOTAL" while it runs
            await ledger.append(RunStarted(loaded.model, str(loaded.path), total))
            works = await work_after_reuse(
                reuser, lambda: owned(loaded.jobs(), shard), past, counts,
                retry_failed=o.retry_failed, store=layout.store, ledger=ledger, stats=engine.stats,
                filename=settings.filename, parts=engine.config.parts, price=price_of,
            )  # fmt: skip
            mean_price = estimate(models, settings).price_per_image  # the jobs' mean
            slots = settings.fixed_concurrency or AUTO_CEILING
            shape = RunShape(total, settings.fixed_rpm, window, slots, expected[0],
                             settings.count_polls, sync)  # fmt: skip
            started = time.monotonic()
            reporter = Reporter(
                lambda: snapshot(
                    engine.stats,
                    shape,
                    counts.done,
                    time.monotonic() - started,
                    mean_price,
                ),
                mode=Reporter.choose(o.quiet, o.status_stream),
                interval=o.status_interval,
                stream=o.status_stream,
            )
            if o.watch is not None:  # `--serve`: the dashboard asks for these figures in this loop
                o.watch(layout.root, layout.store, lambda: {**reporter.sample(), "budget_usd":
                        settings.budget_usd, "retries": engine.stats.retries})  # fmt: skip
            watching = asyncio.create_task(reporter.run())
            try:
                async with signals(engine, o.handle_signals, o.grace) as signalled:
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
            exit_code = _exit_code(engine.stats, interrupted, counts.failed)
            summary = final_summary(
                engine.stats,
                shape,
                skipped=counts.done,
                failed_earlier=counts.failed,
                removed=counts.removed,
                wall=wall,
                exit_code=exit_code,
                double_charged=double_charge_list(final.details),
            )
            if new_folder and not final.started:
                # Nothing was accepted (a refused key, say): leave no folder that looks like a run.
                written = not await asyncio.to_thread(remove_unused, layout)
                return RunResult(engine.stats, out_dir, counts, interrupted, summary, server,
                                 written)  # fmt: skip
            if shard is not None:
                summary["shard"] = {"index": shard.index, "count": shard.count, "jobs": total}
                summary["price_per_image"] = mean_price  # merge: jobs with no cost
            await asyncio.to_thread(write_summary, out_dir, summary)
            await asyncio.to_thread(layout.publish_state)
        except OSError as exc:  # a full disk: the ledger has everything, the next run rebuilds
            raise OutputError(
                f"the images and the ledger are saved, but metadata.jsonl / summary.json in "
                f"{out_dir} could not be rewritten: {exc}; run the same command again once "
                "there is room"
            ) from None
        return RunResult(engine.stats, out_dir, counts, interrupted, summary, server)


def _exit_code(stats: RunStats, interrupted: bool, failed_earlier: int) -> int:
    """130 interrupted, 2 stopped, 1 failed jobs in the folder (this run's or left from an
    earlier one: the folder is not complete until they are retried), else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if stats.stop_reason is not None:
        return EXIT_STOPPED
    return EXIT_FAILED if sum(stats.failed.values()) or failed_earlier else EXIT_OK
