"""Estimates price and time each job by its own model: a model sweep, a JSONL with a model per
row, `validate`'s lines and a dry run's."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.core.littles import HEADROOM, limits
from batchgen.core.pollplans import PollPlans
from batchgen.edges.storage import LocalStore
from batchgen.engine.config import EngineConfig
from batchgen.manifest.estimate import POLLS_PER_JOB, estimate
from batchgen.manifest.loader import Manifest
from batchgen.manifest.settings import RunSettings
from batchgen.models.registry import MODELS, UNKNOWN_MODEL_SECONDS
from batchgen.run.console import dry_run_lines, summary_lines
from batchgen.run.history import read_history
from batchgen.run.limits import limits_line
from batchgen.run.options import expected_seconds, model_seconds
from batchgen.run.resumeplan import plan_resume

SWEEP = """\
model: qwen-image
sweep:
  model: [qwen-image, seedream-4.5]
  prompt: [a cat, a dog, a fox]
"""


def _price(model: str) -> float:
    price = MODELS[model].price_usd
    assert price is not None, model
    return price


def test_a_model_sweep_costs_each_models_price_times_its_jobs(load: Callable[..., Manifest]):
    """3 prompts x 2 models: 3 jobs at each model's table price, not 6 at the manifest's."""
    manifest = load("sweep.yaml", SWEEP)
    scan = manifest.scan(sample=0)
    assert scan.ok
    assert dict(scan.models) == {"qwen-image": 3, "seedream-4.5": 3}
    est = estimate(scan.models, manifest.settings)
    want = 3 * _price("qwen-image") + 3 * _price("seedream-4.5")
    assert est.cost_usd == pytest.approx(want)
    assert est.cost_usd != pytest.approx(6 * _price("qwen-image"))
    slow, fast = (MODELS[m].typical_seconds for m in ("seedream-4.5", "qwen-image"))
    assert est.latency_seconds == pytest.approx((slow + fast) / 2)  # the jobs' mean
    s = manifest.settings
    pace = limits(s.planned_rpm, 1 + (POLLS_PER_JOB if s.count_polls else 0), (slow + fast) / 2,
                  s.fixed_concurrency, latency_high=max(slow, fast) * HEADROOM)  # fmt: skip
    assert est.seconds == pytest.approx(6 / pace.per_minute * 60 + max(slow, fast))
    lines = summary_lines(manifest, scan)
    assert "models qwen-image (3), seedream-4.5 (3)" in lines[0]
    assert lines[1].startswith(f"estimated cost: ${want:,.2f} (3 x $")


def test_jsonl_rows_are_priced_by_their_own_model(load: Callable[..., Manifest]):
    """Rows naming models: each row's model, the manifest's for rows that name none."""
    rows = (
        '{"prompt": "a"}\n'
        '{"model": "seedream-4.5", "prompt": "b"}\n'
        '{"model": "nano-banana", "prompt": "c"}\n'
        '{"model": "nano-banana", "prompt": "d"}\n'
    )
    manifest = load("rows.jsonl", rows)
    scan = manifest.scan()
    assert dict(scan.models) == {"qwen-image": 1, "seedream-4.5": 1, "nano-banana": 2}
    est = estimate(scan.models, manifest.settings)
    want = _price("qwen-image") + _price("seedream-4.5") + 2 * _price("nano-banana")
    assert est.cost_usd == pytest.approx(round(want, 2))


def test_a_pass_through_model_leaves_the_cost_unknown_unless_a_price_is_set(
    load: Callable[..., Manifest],
):
    """As for a one-model run: an unknown slug has no price (the line names it) and its
    latency is the unknown-model figure; `price_per_image` prices every job."""
    text = "sweep:\n  model: [qwen-image, someone/new-model]\n  prompt: [a]\n"
    manifest = load("mixed.yaml", text)
    scan = manifest.scan()
    est = estimate(scan.models, manifest.settings)
    assert est.cost_usd is None
    assert est.unpriced == ("someone/new-model",)
    assert max(m.latency_seconds for m in est.models) == max(
        UNKNOWN_MODEL_SECONDS, MODELS["qwen-image"].typical_seconds
    )
    cost_line = next(line for line in summary_lines(manifest, scan) if "cost" in line)
    assert "unknown (no price for someone/new-model;" in cost_line
    priced = load("priced.yaml", "price_per_image: 0.5\n" + text)
    assert estimate(priced.scan().models, priced.settings).cost_usd == pytest.approx(1.0)


def test_a_dry_run_prices_what_it_would_submit_by_model(
    load: Callable[..., Manifest], tmp_path: Path
):
    """The resume plan counts the jobs to pay for by model; the dry run sums their prices."""
    manifest = load("sweep.yaml", SWEEP)
    steps = plan_resume(manifest, tmp_path / "out", catalog=False)
    assert (steps["pay:qwen-image"], steps["pay:seedream-4.5"]) == (3, 3)
    lines = dry_run_lines(manifest, steps)
    assert lines[0].endswith(": 6 job(s)")  # the per-model keys are not jobs of their own
    want = 3 * _price("qwen-image") + 3 * _price("seedream-4.5")
    assert any(line.startswith(f"to pay for: 6 image(s), ${want:,.2f}") for line in lines)
    assert "  by model: qwen-image 3, seedream-4.5 3" in lines


def test_resume_latencies_and_spend_are_by_each_jobs_model(tmp_path: Path):
    """A ledger's completed jobs seed their own model's poll plan, and an earlier job without a
    recorded cost counts at its own model's price; a record naming no model is the manifest's."""

    def completed(job: str, model: str | None, took: float) -> list[bytes]:
        row = {"id": job} if model is None else {"id": job, "model": model}
        records = [
            {"v": 1, "t": 100.0, "event": "intent", "job": job, "attempt": 0},
            {"v": 1, "t": 100.0, "event": "submitted", "job": job, "request_id": f"r{job}",
             "status_url": "s", "response_url": "u"},
            {"v": 1, "t": 100.0 + took, "event": "completed", "job": job, "request_id": f"r{job}",
             "file": f"{job}.png", "sha256": "0" * 64, "bytes": 1, "format": "png", "seed": 1,
             "metrics": {}, "output": None, "row": row},
        ]  # fmt: skip
        return [(json.dumps(r) + "\n").encode() for r in records]

    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(
        b"".join(
            [
                *completed("a", "qwen-image", 4.0),
                *completed("b", "seedream-4.5", 9.0),
                *completed("c", None, 5.0),
            ]
        )
    )
    past = read_history(ledger, LocalStore(tmp_path), writable=False)
    known = past.known_latencies("qwen-image")
    assert known == {"qwen-image": (4.0, 5.0), "seedream-4.5": (9.0,)}
    plans = PollPlans(28.0)
    plans.seed(known)
    assert plans.of("seedream-4.5").samples == deque([9.0])
    settings = RunSettings()
    spent = past.spent(settings.price_of, "qwen-image")
    assert spent == pytest.approx(2 * _price("qwen-image") + _price("seedream-4.5"))
    config = EngineConfig(out_dir=Path("x"), model_prices={"a": 0.04, "b": 0.2, "c": None})
    assert (config.price_of("a"), config.price_of("other"), config.reserved_price()) == (
        0.04, 0.12, 0.2)  # fmt: skip


SEVERAL = """\
model: seedream-4.5
sweep:
  prompt: [a cat, a dog]
jobs:
  - {max_images: 3}
  - {model: qwen-image}
"""


def test_a_job_asking_for_several_images_is_priced_per_image(
    load: Callable[..., Manifest], tmp_path: Path
):
    """seedream's price is per image: 2 jobs of max_images 3 cost 6 images, in `validate`, in a
    dry run, and in what the budget reserves for one such job in flight."""
    manifest = load("several.yaml", SEVERAL)
    scan = manifest.scan()
    assert dict(scan.models) == {"seedream-4.5": 2, "qwen-image": 2}
    assert dict(scan.images) == {"seedream-4.5": 6, "qwen-image": 2}
    assert dict(scan.most_images) == {"seedream-4.5": 3}
    seedream, qwen = _price("seedream-4.5"), _price("qwen-image")
    want = 6 * seedream + 2 * qwen
    est = estimate(scan.models, manifest.settings, images=scan.images)
    assert est.cost_usd == pytest.approx(round(want, 2))
    assert estimate(scan.models, manifest.settings).cost_usd != est.cost_usd  # per job: less
    cost_line = next(line for line in summary_lines(manifest, scan) if "cost" in line)
    assert f"6 images x ${seedream:.3f} seedream-4.5" in cost_line
    assert f"2 x ${qwen:.3f} qwen-image" in cost_line
    steps = plan_resume(manifest, tmp_path / "out", catalog=False)
    assert (steps["images:seedream-4.5"], steps["images:qwen-image"]) == (6, 2)
    lines = dry_run_lines(manifest, steps)
    assert lines[0].endswith(": 4 job(s)")  # neither per-model count is a job of its own
    assert any(line.startswith(f"to pay for: 4 job(s), 8 images, ${want:,.2f}") for line in lines)
    prices = {"seedream-4.5": seedream, "qwen-image": qwen}
    config = EngineConfig(out_dir=Path("x"), model_prices=prices, most_images=scan.most_images)
    assert config.reserved_price() == pytest.approx(max(3 * seedream, qwen))


def test_the_limits_line_names_each_models_expected_time(load: Callable[..., Manifest]):
    """A run over two models says when each is expected (each has its own poll plan)."""
    manifest = load("sweep.yaml", SWEEP)
    models = ("qwen-image", "seedream-4.5")
    fast, slow = (MODELS[m].typical_seconds for m in models)
    line = limits_line(manifest, {}, expected_seconds("qwen-image", False, None),
                       model_seconds(models, False, None))  # fmt: skip
    assert f"expect {fast:g} s qwen-image, {slow:g} s seedream-4.5 per image (default: " in line
    flagged = limits_line(manifest, {}, (3.0, "flag"), model_seconds(models, False, 3.0))
    assert "expect 3 s per image (flag)" in flagged  # one figure for all: said once
