"""The engine against the emulator over real HTTP: happy path, faults, stops, expiry, secrets."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from batchgen.core.errors import LedgerError
from batchgen.core.jobs import Job
from batchgen.core.lifecycle import State, replay
from batchgen.core.policy import Backoff
from batchgen.core.resume import Step, Work
from batchgen.core.runstats import RunStats
from batchgen.edges.client import ApiClient
from batchgen.edges.ledger import LedgerWriter
from batchgen.emulator import Emulator, parse_fault
from batchgen.engine.pipeline import Engine, EngineConfig
from batchgen.manifest.loader import load_manifest
from tests.helpers import write_jsonl

from .conftest import KEY, StartEmulator

FAST = Backoff(base=0.02, cap=0.2, max_attempts=10, max_elapsed=30.0)


def make_jobs(tmp_path: Path, n: int, **params: object) -> list[Job]:
    """n distinct jobs from a real JSONL manifest."""
    path = tmp_path / "jobs.jsonl"
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"prompt": f"picture {i}", "aspect_ratio": "1:1", **params}) + "\n")
    return list(load_manifest(path).jobs())


async def run_engine(
    emu: Emulator, jobs: list[Job], out: Path, key: str = KEY, **config: object
) -> tuple[RunStats, Engine]:
    settings = {"concurrency": 20, "typical_seconds": 0.05, "backoff": FAST, "window": 1.0}
    settings.update(config)
    async with ApiClient(key, emu.base_url) as api, LedgerWriter(out / "ledger.jsonl") as ledger:
        engine = Engine(api, ledger, EngineConfig(out_dir=out, **settings))  # type: ignore[arg-type]
        stats = await engine.run(jobs)
    return stats, engine


def ledger_records(out: Path) -> list[dict]:
    lines = (out / "ledger.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]  # every line is valid JSON, or this raises


def check_outputs(out: Path, expected_ids: set[str]) -> None:
    """Exactly one verified image per expected job, matching metadata and ledger rows."""
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(expected_ids)
    completed = {r["job"]: r for r in ledger_records(out) if r["event"] == "completed"}
    assert set(completed) == expected_ids
    images = {p.name for p in out.iterdir() if p.suffix in (".png", ".jpg", ".webp")}
    assert images == {r["file_name"] for r in rows}
    for row in rows:
        data = (out / row["file_name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == completed[row["id"]]["sha256"]
        with Image.open(out / row["file_name"]) as image:
            image.load()
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


async def test_happy_path_few_hundred_jobs(emu: Emulator, tmp_path: Path):
    """300 jobs: one decodable image each, metadata rows match jobs, ledger is valid JSON."""
    jobs = make_jobs(tmp_path, 300)
    stats, _ = await run_engine(emu, jobs, tmp_path / "out", concurrency=50)
    assert (stats.completed, stats.finished) == (300, 300)
    check_outputs(tmp_path / "out", {j.id for j in jobs})
    server = emu.stats()
    assert server["paid_submits"] == 300
    assert server["duplicate_paid_submits"] == 0
    assert server["media_with_api_key"] == 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()]
    by_id = {j.id: j for j in jobs}
    for row in rows:
        job = by_id[row["id"]]
        assert row["prompt"] == job.params["prompt"]
        assert row["seed"] == job.params["seed"]
        assert row["request_id"]
        assert row["inference_time"] > 0
    # Calls per job depend on real-time scheduling here; the bound is pinned in virtual time by
    # tests/fast/test_fast_engine.py::test_a_few_hundred_jobs_cost_at_most_three_calls_each.


async def test_faults_at_once_lose_nothing_and_pay_once(
    start_emulator: StartEmulator, tmp_path: Path
):
    """10% 429, 5% 5xx (some after acceptance), 2% resets, 1% truncated media, 2% FAILED, rpm:
    every non-FAILED job has one verified image; no request over the limit; duplicates are
    only the ambiguous submits the engine reported."""
    emu = await start_emulator(
        seed=11,
        rpm=400,
        rate_window=1.0,
        fault_reset_seconds=0.02,
        fail_rate=0.02,
        faults=tuple(
            parse_fault(rule)
            for rule in (
                "*:429=0.10",
                "status:503=0.025",
                "result:502=0.025",
                "submit:accepted-503=0.025",
                "submit:500=0.025",
                "*:reset=0.02",
                "media:truncate=0.01",
            )
        ),
    )
    jobs = make_jobs(tmp_path, 200)
    stats, _ = await run_engine(emu, jobs, tmp_path / "out", rpm=400, concurrency=40)
    out = tmp_path / "out"
    failed = {r["job"]: r for r in ledger_records(out) if r["event"] == "failed"}
    assert {r["kind"] for r in failed.values()} <= {"server"}  # only the emulator's FAILED
    assert 0 < len(failed) < 15
    check_outputs(out, {j.id for j in jobs} - set(failed))
    server = emu.stats()
    assert server["faults_total"] > 30  # the faults really happened
    assert server["rate_limited"] == 0  # never over the limit: only injected 429s
    assert server["duplicate_paid_submits"] <= stats.possible_double_charges
    assert stats.possible_double_charges > 0
    assert stats.completed + len(failed) == 200


async def test_bad_key_stops_after_one_submit(emu: Emulator, tmp_path: Path):
    """A wrong key costs one request: the probe fails and nothing more is sent."""
    stats, _ = await run_engine(emu, make_jobs(tmp_path, 30), tmp_path / "out", key="SG_bad")
    assert stats.stop_reason is not None
    assert "SEGMIND_API_KEY" in stats.stop_reason
    assert emu.stats()["requests"] == {"submit": 1}


async def test_unknown_model_stops_before_any_image(emu: Emulator, tmp_path: Path):
    """An unknown model is one 404 and a stop, no images."""
    path = tmp_path / "jobs.jsonl"
    write_jsonl(path, ({"prompt": f"p{i}"} for i in range(10)))
    jobs = list(load_manifest(path, model="no-such-model").jobs())
    stats, _ = await run_engine(emu, jobs, tmp_path / "out")
    assert stats.stop_reason is not None
    assert "model was not found" in stats.stop_reason
    assert stats.completed == 0
    assert emu.stats()["requests"] == {"submit": 1}


async def test_credits_run_out_mid_run(start_emulator: StartEmulator, tmp_path: Path):
    """Out of credits: no new submits, jobs in flight finish and are written, the stop says why."""
    # The balance runs out before any result has reported it, so the server's 406 is the signal.
    emu = await start_emulator(credits=0.12 * 3, latency=0.3, latency_jitter=0.0)
    stats, _ = await run_engine(emu, make_jobs(tmp_path, 30), tmp_path / "out", concurrency=4)
    assert stats.stop_reason is not None
    assert "out of credits" in stats.stop_reason
    server = emu.stats()
    assert server["submits_accepted"] == 3
    assert server["responses"]["406"] >= 1
    assert server["in_flight"] == 0
    assert stats.completed == 3
    completed = [r for r in ledger_records(tmp_path / "out") if r["event"] == "completed"]
    assert len(completed) == 3


async def test_submits_refused_at_a_stop_are_no_double_charge(
    start_emulator: StartEmulator, tmp_path: Path
):
    """A job whose submit got the 406 that stopped the run is released unpaid: the ledger replays
    it as PENDING, not as a possible double charge for the next run to report."""
    emu = await start_emulator(credits=0.12 * 3, latency=0.3, latency_jitter=0.0)
    out = tmp_path / "out"
    await run_engine(emu, make_jobs(tmp_path, 30), out, concurrency=4)
    records = ledger_records(out)
    refused = {r["job"] for r in records if r["event"] == "released"} - {
        r["job"] for r in records if r["event"] in ("submitted", "unknown")
    }
    intents = {r["job"] for r in records if r["event"] == "intent"}
    assert refused & intents  # at least one job sent its submit and was refused with the 406
    with (out / "ledger.jsonl").open("rb") as handle:
        jobs = replay(handle).jobs
    assert all(jobs[j].state is State.PENDING and jobs[j].ambiguous == 0 for j in refused)
    assert sum(job.ambiguous for job in jobs.values()) == 0


async def test_expired_request_is_resubmitted_and_completes(emu: Emulator, tmp_path: Path):
    """A record that expired before the first poll is submitted again and completes."""
    jobs = make_jobs(tmp_path, 1)
    task = asyncio.create_task(run_engine(emu, jobs, tmp_path / "out", typical_seconds=0.4))
    while emu.stats()["submits_accepted"] == 0:  # noqa: ASYNC110 - the server is the judge
        await asyncio.sleep(0.005)
    emu.advance(3601)  # the first record is now past its retention
    stats, _ = await task
    assert (stats.completed, stats.resubmits) == (1, 1)
    assert emu.stats()["paid_submits"] == 2
    events = [r["event"] for r in ledger_records(tmp_path / "out")]
    assert events.count("expired") == 1


async def test_result_url_that_cannot_answer_pending_falls_back_to_status(
    start_emulator: StartEmulator, tmp_path: Path
):
    """A server whose result URL 404s before completion: poll the status URL instead."""
    emu = await start_emulator(early_result="404", latency=0.2, latency_jitter=0.0)
    jobs = make_jobs(tmp_path, 5)
    stats, engine = await run_engine(emu, jobs, tmp_path / "out", typical_seconds=0.05)
    assert stats.completed == 5
    assert engine.follower.result_answers_pending is False
    assert emu.stats()["status_polls"] > 0


async def test_secret_never_written_and_media_carries_no_key(
    start_emulator: StartEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """The API key is in no output file and no log line; media downloads carry no key."""
    key = "SG_0123456789abcdef"
    emu = await start_emulator(keys=(key,), media_origin=True, fail_rate=0.2, seed=3)
    caplog.set_level(logging.DEBUG)
    await run_engine(emu, make_jobs(tmp_path, 20), tmp_path / "out", key=key)
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    assert key not in caplog.text
    assert emu.stats()["media_with_api_key"] == 0


async def test_ledger_failure_stops_the_run_before_any_submit(emu: Emulator, tmp_path: Path):
    """If the ledger cannot be written, nothing is submitted: the run stops with LedgerError."""
    jobs = make_jobs(tmp_path, 5)
    async with ApiClient(KEY, emu.base_url) as api, LedgerWriter(Path("/dev/full")) as ledger:
        engine = Engine(api, ledger, EngineConfig(out_dir=tmp_path / "out", window=1.0))
        with pytest.raises(LedgerError):
            await engine.run(jobs)
    assert emu.stats()["requests_total"] == 0


async def test_polls_counted_against_a_strict_limit(start_emulator: StartEmulator, tmp_path: Path):
    """With count_polls, submits and polls together stay within rpm in every window."""
    emu = await start_emulator(rpm=40, rate_window=1.0, count_polls=True, latency=0.05)
    stats, _ = await run_engine(
        emu, make_jobs(tmp_path, 20), tmp_path / "out", rpm=40, count_polls=True
    )
    assert stats.completed == 20
    assert emu.stats()["rate_limited"] == 0


async def test_sync_mode_happy_path(emu: Emulator, tmp_path: Path):
    """Sync mode: one v1 call per job, verified images, metadata and ledger as in queue mode."""
    jobs = make_jobs(tmp_path, 30, image_format="webp")
    stats, _ = await run_engine(emu, jobs, tmp_path / "out", sync=True)
    assert stats.completed == 30
    check_outputs(tmp_path / "out", {j.id for j in jobs})
    server = emu.stats()
    assert (server["sync_accepted"], server["submits_accepted"]) == (30, 0)
    assert server["requests"] == {"sync": 30}


async def test_sync_mode_faults(start_emulator: StartEmulator, tmp_path: Path):
    """Sync mode retries 429/5xx (never billed); a lost answer is not retried (maybe billed)."""
    emu = await start_emulator(
        seed=4,
        faults=tuple(parse_fault(r) for r in ("sync:429=0.15", "sync:503=0.1", "sync:reset=0.05")),
        fault_reset_seconds=0.01,
    )
    jobs = make_jobs(tmp_path, 60)
    stats, _ = await run_engine(emu, jobs, tmp_path / "out", sync=True)
    failed = {r["job"]: r for r in ledger_records(tmp_path / "out") if r["event"] == "failed"}
    assert {r["kind"] for r in failed.values()} <= {"unknown"}
    assert stats.completed + len(failed) == 60
    assert stats.retries + stats.rate_limited > 5
    check_outputs(tmp_path / "out", {j.id for j in jobs} - set(failed))
    server = emu.stats()
    assert server["duplicate_paid_submits"] == 0
    assert server["faults"].get("sync:reset", 0) == len(failed)


async def test_budget_stops_submitting_before_the_cap(emu: Emulator, tmp_path: Path):
    """With budget_usd, no submit is sent once projected spend would pass it; paid jobs finish."""
    stats, _ = await run_engine(
        emu, make_jobs(tmp_path, 20), tmp_path / "out", concurrency=3, budget_usd=0.6,
        price_per_image=0.12,
    )  # fmt: skip
    assert stats.stop_reason is not None
    assert "budget reached" in stats.stop_reason
    server = emu.stats()
    assert server["submits_accepted"] == stats.completed <= 5
    assert server["credits_spent"] <= 0.6 + 1e-9
    assert stats.spend == pytest.approx(server["credits_spent"])


async def test_reported_balance_stops_the_run_before_the_server_refuses(
    start_emulator: StartEmulator, tmp_path: Path
):
    """remaining_credits from results is watched: the run stops before any 406."""
    emu = await start_emulator(credits=1.0, latency=0.05)
    stats, _ = await run_engine(emu, make_jobs(tmp_path, 20), tmp_path / "out", concurrency=2)
    assert stats.stop_reason is not None
    assert "balance" in stats.stop_reason
    assert "406" not in emu.stats()["responses"]
    assert stats.completed >= 5


async def test_a_probe_refused_before_sending_does_not_hang_the_run(emu: Emulator, tmp_path: Path):
    """A budget below one image refuses the very first submit; the run still ends, and says why."""
    stats, _ = await asyncio.wait_for(
        run_engine(emu, make_jobs(tmp_path, 3), tmp_path / "out", budget_usd=0.05,
                   price_per_image=0.12),
        timeout=10,
    )  # fmt: skip
    assert stats.stop_reason is not None
    assert "budget" in stats.stop_reason
    assert emu.stats()["requests_total"] == 0


async def _attach_one(emu: Emulator, tmp_path: Path, age: float) -> RunStats:
    """Submit one job directly, then hand it to the engine as an earlier run's request."""
    job = make_jobs(tmp_path, 1)[0]
    async with ApiClient(KEY, emu.base_url) as api:
        request = await api.submit(job.model, dict(job.params))
    work = Work(job, Step.ATTACH, request=request, age=age)
    stats, _ = await run_engine(emu, [work], tmp_path / "out")  # type: ignore[list-item]
    return stats


async def test_reattached_request_falls_back_to_status_url_not_resubmit(
    start_emulator: StartEmulator, tmp_path: Path
):
    """A resumed request whose result URL 404s while pending is polled on its status URL."""
    emu = await start_emulator(early_result="404", latency=0.3, latency_jitter=0.0)
    stats = await _attach_one(emu, tmp_path, age=60.0)
    assert (stats.completed, stats.resubmits, stats.reattached) == (1, 0, 1)
    assert emu.stats()["paid_submits"] == 1


async def test_one_error_on_an_old_request_is_retried_not_fatal(
    start_emulator: StartEmulator, tmp_path: Path
):
    """Retry bounds count from the first error of a streak, not from the (old) submit."""
    emu = await start_emulator(faults=(parse_fault("result:502=1x1"),), latency=0.1)
    stats = await _attach_one(emu, tmp_path, age=700.0)
    assert (stats.completed, sum(stats.failed.values()), stats.retries) == (1, 0, 1)
