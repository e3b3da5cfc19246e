"""CPU per job as instructions, which a busy machine does not blur: `batchgen run` under callgrind.

    python bench/instructions.py [--jobs 100,500] [TREE ...]

Timing CPU per job on the 2-core dev machine swings by 20 % with whatever else runs (another
benchmark, a test suite): an A/B of a 5 % change needs a quiet machine and many rounds. The
instructions a process executes do not depend on the load, so this counts them: for each source
tree (a checkout or `git worktree` of the commit to compare; default: this one), a fresh
`batchgen emulator` (5 ms jobs, workers = C, `--rpm 1000000`) and `batchgen run` on N qwen-image
prompts under `valgrind --tool=callgrind` (user-space instructions of every thread; the
emulator is not counted), at two sizes. **Instructions per job** = the difference of the two
totals / the difference of the sizes: interpreter start, imports and the run's fixed end cost
cancel out, and **fixed** (the small run's total minus its jobs' share) is reported apart.
Kernel time (fsync, sockets) is not counted: it is measured by `run_scale.py`'s CPU figures.

Under callgrind the client is ~50x slower, so the emulator's 5 ms is never what a poll waits for:
every job is found done at its first poll, the same for every tree (the run's calls/job are
printed so a difference shows). Needs `valgrind` (Debian: `apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEY = "bench-key"
LISTENING = re.compile(r"listening on (http://\S+)")
COLLECTED = re.compile(r"Collected : (\d+)")
CALLS = re.compile(r"API calls per job: ([\d.]+)")


def count(tree: Path, jobs: int, tmp: Path, concurrency: int = 100) -> tuple[int, float]:
    """(instructions, API calls per job) of one `batchgen run` of `jobs` jobs from `tree`."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    manifest = folder / "jobs.jsonl"
    manifest.write_text(
        "".join(json.dumps({"model": "qwen-image", "prompt": f"n {i}"}) + "\n" for i in range(jobs))
    )
    env = {**os.environ, "SEGMIND_API_KEY": KEY, "BATCHGEN_CATALOG": "off",
           "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    # cwd is the temporary folder: `python -m` puts the cwd first on sys.path, before PYTHONPATH.
    emulator = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "emulator", "--port", "0", "--key", KEY, "--workers",
         str(concurrency), "--latency", "0.005", "--rpm", "1000000", "--credits", "1e9"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=folder,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        match = LISTENING.search(emulator.stdout.readline())
        if match is None:
            raise RuntimeError("the emulator did not start")
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder / 'cg.out'}",
             sys.executable, "-m", "batchgen", "run", str(manifest), "--base-url", match[1],
             "--out", str(folder / "out"), "--concurrency", str(concurrency), "--rpm",
             "1000000", "--expect-seconds", "0.005", "--quiet"],
            env=env, cwd=folder, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        emulator.terminate()
        emulator.wait()
    total, calls = COLLECTED.search(run.stderr), CALLS.search(run.stdout + run.stderr)
    if run.returncode != 0 or total is None or calls is None:
        raise RuntimeError(f"run of {jobs} jobs failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return int(total[1]), float(calls[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, help="source trees (default: this one)")
    parser.add_argument("--jobs", default="100,500", help="the two sizes, small,large")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    small, large = (int(n) for n in args.jobs.split(","))
    trees = args.trees or [Path(__file__).resolve().parent.parent]
    print("| tree | instructions/job (M) | fixed (G) | calls/job small, large |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="batchgen-instr-") as tmp:
        for tree in trees:
            (low, calls_low), (high, calls_high) = (
                count(tree, n, Path(tmp)) for n in (small, large)
            )
            per_job = (high - low) / (large - small)
            fixed = low - per_job * small
            row = (
                f"| {tree} | {per_job / 1e6:.3f} | {fixed / 1e9:.2f} | {calls_low}, {calls_high} |"
            )
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
