"""The emulator's back end: request records, a worker queue, media, credits and the clock.

Every random decision about a job (its id, resolved seed, processing time, whether it fails) is
drawn from one seeded stream at submit time, so a scenario replays the same way for the same
submit order, whatever the timing of polls.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batchgen.emulator.config import EmulatorConfig
from batchgen.emulator.derive import InputError
from batchgen.emulator.drawjob import draw
from batchgen.emulator.hostile import hostile_kind
from batchgen.emulator.stats import Stats, fingerprint

__all__ = ["Clock", "JobRecord", "JobStore", "Media"]

SEED_SPACE = 2**31 - 1


class Clock:
    """Monotonic and wall time with an offset that tests can advance (no real waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass(frozen=True)
class Media:
    media_id: str
    data: bytes
    fmt: str
    created_at: float
    hostile: str | None = None  # a served kind of hostile.py: the media URL answers a trap

    @property
    def file_name(self) -> str:
        return f"{self.media_id}.{self.fmt}"


@dataclass
class JobRecord:
    request_id: str
    model: str
    params: dict[str, Any]
    seed: int
    submitted_at: float
    duration: float
    planned_error: str | None  # decided at submit; None means the job completes
    cost: float
    state: str = "QUEUED"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    inputs: tuple[bytes, ...] = ()  # the image inputs' contents, in slot order
    asked: int = 1  # images the job asked for (seedream's max_images)
    produces: int = 1  # images it returns: `asked`, unless a fault makes it fewer
    outputs: list[Media] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def media(self) -> Media | None:
        """The first image (the only one for most models), once COMPLETED."""
        return self.outputs[0] if self.outputs else None

    @property
    def queue_time(self) -> float:
        return (self.started_at or self.submitted_at) - self.submitted_at

    @property
    def inference_time(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at


class JobStore:
    def __init__(self, config: EmulatorConfig, clock: Clock, stats: Stats) -> None:
        self.config = config
        self.clock = clock
        self.stats = stats
        self.credits = config.credits
        self._records: dict[str, JobRecord] = {}
        self._media: dict[str, Media] = {}
        self._queue: asyncio.Queue[JobRecord] = asyncio.Queue()
        self._rng = random.Random(f"{config.seed}:jobs")
        self._sequence = 0

    # -- submit side -------------------------------------------------------------------------

    def can_afford(self, model: str, images: int = 1) -> bool:
        return self.credits + 1e-9 >= self.config.cost_of(model) * images

    def submit(
        self,
        model: str,
        params: Mapping[str, Any],
        invalid: str | None,
        inputs: tuple[bytes, ...] = (),
        outputs: int = 1,
        asked: int | None = None,
    ) -> JobRecord:
        """Accept and bill a job (billing is refunded if it FAILS); `invalid` fails it later.

        `inputs` are the image inputs' contents; `outputs` is how many images the job returns,
        `asked` how many it asked for (default: `outputs`).
        """
        cfg = self.config
        rng = self._rng
        seed = params.get("seed", -1)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            seed = rng.randrange(SEED_SPACE)
        mean, jitter = cfg.latency_of(model)
        duration = max(0.0, mean + rng.uniform(-jitter, jitter))
        error = invalid
        prompt = params.get("prompt")
        if (
            error is None
            and isinstance(prompt, str)
            and cfg.fail_marker
            and cfg.fail_marker in prompt
        ):
            error = (
                "Image generation failed: the prompt was blocked by the content filter "
                f"({cfg.fail_marker!r})"
            )
        if rng.random() < cfg.fail_rate and error is None:
            error = "Image generation failed: inference worker error"
        record = JobRecord(
            request_id=self._new_id(),
            model=model,
            params=dict(params),
            seed=seed,
            submitted_at=self.clock.now(),
            duration=duration,
            planned_error=error,
            cost=cfg.cost_of(model) * outputs,  # a price is per image made (max_images)
            inputs=inputs,
            asked=outputs if asked is None else asked,
            produces=outputs,
        )
        self.credits -= record.cost
        self._records[record.request_id] = record
        self.stats.paid[fingerprint(model, params)] += 1
        self.stats.job_started()
        self._queue.put_nowait(record)
        return record

    def _new_id(self) -> str:
        self._sequence += 1
        if self.config.id_format == "sequential":
            return f"req-{self._sequence:06d}"
        raw = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        return str(raw) if self.config.id_format == "uuid" else raw.hex

    # -- poll side ---------------------------------------------------------------------------

    def get(self, request_id: str) -> JobRecord | None:
        """The live record, or None when unknown or past retention (then it is forgotten)."""
        record = self._records.get(request_id)
        if record is not None and self.clock.now() - record.submitted_at > self.config.retention:
            del self._records[request_id]
            return None
        return record

    def media(self, media_id: str) -> Media | None:
        item = self._media.get(media_id)
        if item is not None and self.clock.now() - item.created_at > self.config.media_retention:
            del self._media[media_id]
            return None
        return item

    # -- workers -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Process the queue with `workers` concurrent workers and sweep expired records."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self.config.workers):
                group.create_task(self._worker())
            group.create_task(self._sweeper())

    async def _worker(self) -> None:
        while True:
            record = await self._queue.get()
            record.state = "PROCESSING"
            record.started_at = self.clock.now()
            await asyncio.sleep(record.duration)
            await self._finish(record)

    async def _finish(self, record: JobRecord) -> None:
        planned = record.planned_error
        images: list[tuple[bytes, str]] = []
        if planned is None:
            try:
                images = await asyncio.to_thread(
                    draw,
                    record.model,
                    record.params,
                    record.seed,
                    record.inputs,
                    record.produces,
                    self.config.full_size,
                )
            except InputError as exc:
                planned = f"Image generation failed: {exc}"
        if planned is None:
            hostile = hostile_kind(record.params.get("prompt"), self.config.hostile_marker)
            for k, (data, fmt) in enumerate(images):
                # Derived, not drawn: finishing order varies with timing and must not shift the
                # seeded stream that later submits draw from.
                tag = f"{self.config.seed}:{record.request_id}" + (f":{k}" if k else "")
                media_id = hashlib.sha256(tag.encode()).hexdigest()[:32]
                item = Media(media_id, data, fmt, self.clock.now(), hostile if k == 0 else None)
                record.outputs.append(item)
                self._media[media_id] = item
            record.state = "COMPLETED"
            self.stats.credits_spent += record.cost
            self.stats.images_made += len(images)
        else:
            record.state = "FAILED"
            record.error = planned
            self.credits += record.cost  # failed jobs are not billed
        record.finished_at = self.clock.now()
        self.stats.job_finished(ok=record.state == "COMPLETED")
        record.done.set()

    async def _sweeper(self) -> None:
        """Forget expired records and media so a long-running emulator's memory stays flat."""
        period = min(self.config.retention, 60.0) / 2
        while True:
            await asyncio.sleep(period)
            for request_id in list(self._records):
                self.get(request_id)
            for media_id in list(self._media):
                self.media(media_id)
