"""Measure `lifecycle.replay` on a realistic 1,000,000-event ledger: seconds, events/s, peak RSS.

Target (issue 5): <= 5 s, i.e. resuming a night's run costs seconds, not minutes. Run from the
repo root:

    python bench/replay_1m.py [--events N] [--profile]

The ledger mixes what a long run writes: per job intent/submitted/completed, plus ambiguous
submits (unknown + a second intent), expiries with a resubmit, failures, jobs released by a
stop and re-polled by a later run, and a `run` line every 50k jobs: ~4 events a job, ~250k
jobs. Records are serialised exactly like `LedgerWriter`. The replay runs in a child process
so that `RUSAGE_CHILDREN.ru_maxrss` is its peak alone, not this script's (which builds the file).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = 1_700_000_000.0
CHILD = """
import sys, time
from batchgen.core.lifecycle import replay
t0, c0 = time.perf_counter(), time.process_time()
with open(sys.argv[1], "rb") as handle:
    result = replay(handle)
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
states = {}
for job in result.jobs.values():
    states[job.state.value] = states.get(job.state.value, 0) + 1
print(elapsed, cpu, result.events, len(result.jobs), result.runs, result.torn, states)
"""


def line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def write_ledger(path: Path, events: int, seed: int = 1) -> int:
    """Write about `events` records (stops at the first job boundary past it); returns the count."""
    rand = random.Random(seed)
    written = 0
    t = T0
    with path.open("wb") as f:
        out: list[bytes] = []

        def emit(event: str, **fields: Any) -> None:
            nonlocal t, written
            t += 0.004
            out.append(line({"v": 1, "t": round(t, 3), "event": event, **fields}))
            written += 1

        job_no = 0
        while written < events:
            if job_no % 50_000 == 0:
                emit("run", model="qwen-image", manifest="jobs/dataset.yaml")
            job = f"{rand.getrandbits(64):016x}"
            rid = f"{rand.getrandbits(128):032x}"
            urls = {
                "status_url": f"https://api.segmind.com/v2/requests/{rid}/status",
                "response_url": f"https://api.segmind.com/v2/requests/{rid}",
            }
            emit("intent", job=job, attempt=0)
            roll = rand.random()
            if roll < 0.12:  # the answer to a submit was lost: maybe billed, resubmitted
                emit("unknown", job=job, error="connection reset after the request was sent")
                emit("intent", job=job, attempt=1)
            emit("submitted", job=job, request_id=rid, **urls)
            if 0.12 <= roll < 0.22:  # the server forgot it: a new, paid submit
                emit("expired", job=job, request_id=rid)
                emit("intent", job=job, attempt=0)
                emit("submitted", job=job, request_id=rid, **urls)
            if rand.random() < 0.35:  # a stop left it in flight; a later run re-polls it
                emit("released", job=job, reason="interrupted")
            if rand.random() < 0.03:
                emit("failed", job=job, kind="server", error="FAILED", request_id=rid)
            elif rand.random() < 0.995:
                emit(
                    "completed",
                    job=job,
                    request_id=rid,
                    file=f"{job}.jpg",
                    sha256=f"{rand.getrandbits(256):064x}",
                    bytes=rand.randint(80_000, 400_000),
                    format="jpeg",
                    seed=rand.getrandbits(31),
                    metrics={"inference_time": round(rand.uniform(20, 36), 3)},
                )
            job_no += 1
            if len(out) >= 10_000:
                f.write(b"".join(out))
                out.clear()
        f.write(b"".join(out))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the replay in-process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.jsonl"
        t0 = time.perf_counter()
        events = write_ledger(path, args.events)
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {events:,} events ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        if args.profile:
            import cProfile
            import pstats

            from batchgen.core.lifecycle import replay

            with path.open("rb") as handle:
                cProfile.runctx("replay(handle)", globals(), {"replay": replay, "handle": handle},
                                str(Path(tmp) / "prof"))  # fmt: skip
            pstats.Stats(str(Path(tmp) / "prof")).sort_stats("tottime").print_stats(12)
            return 0
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        print(done.stderr[-2000:])
        return 1
    elapsed_text, cpu_text, replayed, jobs, runs, torn, states = done.stdout.split(" ", 6)
    elapsed, cpu = float(elapsed_text), float(cpu_text)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(f"replayed {int(replayed):,} events, {int(jobs):,} jobs, {runs} runs, torn={torn}")
    print(f"states: {states.strip()}")
    rate = int(replayed) / elapsed
    print(f"replay: {elapsed:.2f} s wall ({cpu:.2f} s CPU), {rate:,.0f} events/s, "
          f"peak RSS {peak_mb:.0f} MB")  # fmt: skip
    ok = elapsed <= 5.0 and int(replayed) == events
    print("target (<= 5 s):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
