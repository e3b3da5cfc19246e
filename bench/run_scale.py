"""Does a run's cost grow with its length? Peak RSS and CPU per job of `batchgen run` at sizes N.

    python bench/run_scale.py [--jobs 2000,20000] [--concurrency 100] [--latency 0.005]

Issue 16 asks that a 200,000-job run peak within 30 MB of a 2,000-job run, at flat CPU per job:
what a run keeps per finished job (and what its last step, rebuilding metadata.jsonl from the
ledger, holds) must not grow with N. Per size: a JSONL manifest of N qwen-image prompts, a fresh
`batchgen emulator` process (latency L, workers = C, `--rpm 1000000`: the client is CPU-bound),
and `batchgen run` in a child process (`--concurrency C --rpm 1000000 --quiet`, the catalogue
on as a user has it, a fresh file; `--no-catalog` for off). From the run process only (the
emulator is another process):

- **peak RSS**: its `ru_maxrss` (`os.wait4`), imports included;
- **CPU ms/job**: user + sys of the whole process / N, and **run CPU ms/job**: from the moment
  its ledger exists (imports and the manifest scan done) to its exit, / N;
- RSS sampled from `/proc/PID/status` twice a second, reported at 50 % and 100 % of the final
  ledger size and at exit, so growth during the run and a jump at its end are told apart;
- jobs/s: N / wall seconds of the child;
- with `--resume`, the same command once more on the finished folder (every job skipped): its
  peak RSS and CPU/job, what reading the folder's ledger back costs a resume.

It prints one JSON line per size, then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KEY = "bench-key"
LISTENING = re.compile(r"listening on (http://\S+)")
TICK = 0.5  # seconds between RSS samples


@dataclass
class Point:
    jobs: int
    peak_rss_mb: float
    cpu_ms_per_job: float
    run_cpu_ms_per_job: float
    jobs_per_s: float
    rss_half_mb: float  # sampled RSS when the ledger reached half its final size
    rss_ledger_done_mb: float  # when the ledger reached its final size (the end step follows)
    # A second run of the finished folder (--resume): every job is skipped, so what it holds is
    # what reading back the folder's ledger costs (None when not measured).
    resume_peak_rss_mb: float | None = None
    resume_cpu_ms_per_job: float | None = None
    trace: list[tuple[float, float, float]] | None = None  # (s, RSS MB, ledger share), --trace


def _status_kb(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match[1]) if match else 0


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sample(pid: int, ledger: Path, out: list[tuple[float, int, int]], stop: threading.Event,
            started: list[float]) -> None:  # fmt: skip
    """(time, RSS kB, ledger bytes) every TICK; `started` gets the CPU when the ledger appears."""
    while not stop.is_set():
        size = ledger.stat().st_size if ledger.exists() else -1
        if size >= 0 and not started:
            cpu = _cpu_s(pid)
            if cpu is not None:
                started.append(cpu)
        out.append((time.monotonic(), _status_kb(pid, "VmRSS"), size))
        stop.wait(TICK)


def _child(
    command: list[str], env: dict[str, str], ledger: Path, jobs: int
) -> tuple[float, float, Any, list[tuple[float, int, int]], list[float]]:
    """Run `command` to its end, sampled: (start, wall s, its rusage, samples, CPU at ledger)."""
    begun = time.monotonic()
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int, int]] = []
    cpu_at_ledger: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(run.pid, ledger, samples, stop, cpu_at_ledger))
    sampler.start()
    _, status, usage = os.wait4(run.pid, 0)
    wall = time.monotonic() - begun
    stop.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    assert run.stderr is not None
    errors = run.stderr.read().decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"batchgen run ({jobs} jobs) exited {code}:\n{errors[-3000:]}")
    return begun, wall, usage, samples, cpu_at_ledger


def measure(
    jobs: int, concurrency: int, latency: float, tmp: Path, trace: bool = False,
    catalog: bool = True, resume: bool = False,
) -> Point:  # fmt: skip
    folder = tmp / f"n{jobs}"
    folder.mkdir()
    manifest = folder / "jobs.jsonl"
    with manifest.open("w") as handle:
        for i in range(jobs):
            handle.write(json.dumps({"model": "qwen-image", "prompt": f"scale {i}"}) + "\n")
    # The catalogue as a user has it (on, here a fresh file), or off (--no-catalog).
    where = str(folder / "catalog.sqlite") if catalog else "off"
    env = {**os.environ, "SEGMIND_API_KEY": KEY, "BATCHGEN_CATALOG": where,
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    emulator = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "emulator", "--port", "0", "--key", KEY,
         "--workers", str(concurrency), "--latency", str(latency), "--rpm", "1000000",
         "--credits", "1e9"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        line = emulator.stdout.readline()
        match = LISTENING.search(line)
        if match is None:
            raise RuntimeError(f"emulator did not start: {line!r}")
        out = folder / "out"
        command = [sys.executable, "-m", "batchgen", "run", str(manifest), "--base-url", match[1],
                   "--out", str(out), "--concurrency", str(concurrency), "--rpm", "1000000",
                   "--expect-seconds", str(latency), "--quiet"]  # fmt: skip
        begun, wall, usage, samples, cpu_at_ledger = _child(command, env, out / "ledger.jsonl",
                                                            jobs)  # fmt: skip
        again = _child(command, env, out / "ledger.jsonl", jobs)[2] if resume else None
    finally:
        emulator.terminate()
        emulator.wait()
    cpu = usage.ru_utime + usage.ru_stime
    final = max(size for _, _, size in samples)

    def rss_at(fraction: float) -> float:
        kb = next((rss for _, rss, size in samples if size >= fraction * final), 0)
        return round(kb / 1024, 1)

    startup = cpu_at_ledger[0] if cpu_at_ledger else 0.0
    return Point(
        jobs=jobs,
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        cpu_ms_per_job=round(cpu / jobs * 1000, 3),
        run_cpu_ms_per_job=round((cpu - startup) / jobs * 1000, 3),
        jobs_per_s=round(jobs / wall, 1),
        rss_half_mb=rss_at(0.5),
        rss_ledger_done_mb=rss_at(1.0),
        resume_peak_rss_mb=None if again is None else round(again.ru_maxrss / 1024, 1),
        resume_cpu_ms_per_job=None
        if again is None
        else round((again.ru_utime + again.ru_stime) / jobs * 1000, 3),
        trace=[
            (round(t - begun, 2), round(kb / 1024, 1), round(size / final, 3))
            for t, kb, size in samples
        ]
        if trace
        else None,
    )


def table(points: list[Point]) -> str:
    lines = ["| N | peak RSS MB | CPU ms/job | run CPU ms/job | jobs/s | RSS at 50 % MB "
             "| RSS at ledger end MB |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in points:
        lines.append(f"| {p.jobs:,} | {p.peak_rss_mb} | {p.cpu_ms_per_job} | "
                     f"{p.run_cpu_ms_per_job} | {p.jobs_per_s} | {p.rss_half_mb} | "
                     f"{p.rss_ledger_done_mb} |")  # fmt: skip
    if len(points) > 1:
        first, last = points[0], points[-1]
        lines.append(f"\npeak RSS {last.jobs:,} - {first.jobs:,} jobs: "
                     f"{last.peak_rss_mb - first.peak_rss_mb:+.1f} MB; run CPU ms/job ratio "
                     f"{last.run_cpu_ms_per_job / first.run_cpu_ms_per_job:.2f}")  # fmt: skip
        if first.resume_peak_rss_mb is not None and last.resume_peak_rss_mb is not None:
            lines.append(f"resume of the finished folder: peak RSS {first.resume_peak_rss_mb} -> "
                         f"{last.resume_peak_rss_mb} MB "
                         f"({last.resume_peak_rss_mb - first.resume_peak_rss_mb:+.1f}), CPU "
                         f"{first.resume_cpu_ms_per_job} -> {last.resume_cpu_ms_per_job} "
                         "ms/job")  # fmt: skip
    return "\n".join(lines)


def run_sizes(
    sizes: list[int], concurrency: int = 100, latency: float = 0.005, trace: bool = False,
    catalog: bool = True, resume: bool = False,
) -> list[Point]:  # fmt: skip
    """One measurement per size, smallest first (what bench/run.py calls)."""
    points = []
    with tempfile.TemporaryDirectory(prefix="batchgen-runscale-") as tmp:
        for n in sizes:
            point = measure(n, concurrency, latency, Path(tmp), trace, catalog, resume)
            print(json.dumps(asdict(point)), file=sys.stderr, flush=True)
            points.append(point)
    return points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", default="2000,20000", help="comma-separated run sizes")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--trace", action="store_true", help="RSS samples in the JSON lines")
    parser.add_argument("--no-catalog", action="store_true", help="BATCHGEN_CATALOG=off")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="then run the finished folder again (all skipped), measured too",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.jobs.split(",")]
    points = run_sizes(
        sizes, args.concurrency, args.latency, args.trace, not args.no_catalog, args.resume
    )
    print(table(points))
    return 0


if __name__ == "__main__":
    sys.exit(main())
