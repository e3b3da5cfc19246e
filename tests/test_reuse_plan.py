"""How reuse shows in the numbers (fast tier, no sockets): live snapshot, summary, dry run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from batchgen.core.runstats import RunStats
from batchgen.core.summary import RunShape, final_summary, snapshot
from batchgen.manifest.loader import Manifest
from batchgen.run.console import dry_run_lines
from batchgen.run.progress import _render

SHAPE = RunShape(total=100, rpm=60, window=60.0, concurrency=4, typical_seconds=10.0)


def test_reused_jobs_are_neither_left_nor_completed():
    stats = RunStats(completed=10, spend=1.2, reused=60, saved=7.2)
    live = snapshot(stats, SHAPE, skipped=20, elapsed=60.0, price=0.12)
    assert (live["reused"], live["saved_usd"], live["waiting"]) == (60, 7.2, 10)
    assert live["projected_usd"] == 1.2 + 10 * 0.12
    assert "done 10/20 · reused 60 (saved $7.20)" in _render(live).plain
    final = final_summary(stats, SHAPE, skipped=20, failed_earlier=0, removed=0, wall=1.0,
                          exit_code=0)  # fmt: skip
    assert (final["outcome"]["completed"], final["outcome"]["reused"]) == (10, 60)
    assert (final["spend_usd"], final["saved_usd"]) == (1.2, 7.2)


def test_dry_run_lines_count_reuse_apart_from_what_is_paid(load: Callable[..., Manifest]):
    manifest = load("m.yaml", "price_per_image: 0.5\njobs:\n  - {prompt: a}\n")
    steps = Counter(submit=4, reuse=6, saved_cents=300, done=2)
    lines = dry_run_lines(manifest, steps)
    assert lines[0].endswith(": 12 job(s)")
    assert "  reuse from catalogue    6  (not paid: saves $3.00)" in lines
    assert any(line.startswith("to pay for: 4 image(s), $2.00") for line in lines)
