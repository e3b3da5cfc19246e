"""Measure `batchgen validate` on a 1,000,000-line JSONL: wall time and peak RSS.

Targets (issue 3): <= 30 s and <= 100 MB peak RSS, i.e. validation streams. Run from the repo root:

    python bench/validate_1m.py [--lines N]

The validation runs in a child process so that `RUSAGE_CHILDREN.ru_maxrss` is its peak alone,
not this script's (which only writes the file).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASPECTS = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]


def write_jsonl(path: Path, lines: int) -> None:
    """Varied rows (ids by hash, some fixed seeds, annotations) like a real dataset."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            row: dict[str, object] = {
                "prompt": f"prompt number {i}: a photo of object {i % 9973} in style {i % 31}",
                "aspect_ratio": ASPECTS[i % len(ASPECTS)],
                "guidance": 1 + (i % 190) / 10,
                "_row": i,
            }
            if i % 3 == 0:
                row["seed"] = i
            f.write(json.dumps(row) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        t0 = time.perf_counter()
        write_jsonl(path, args.lines)
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {args.lines:,} lines ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")
        cmd = [
            sys.executable,
            "-m",
            "batchgen",
            "validate",
            str(path),
            "--show",
            "1",
            "--no-catalog",
        ]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(done.stdout.strip().splitlines()[0] if done.stdout else done.stderr[-2000:])
    print(f"validate: exit {done.returncode}, {elapsed:.1f} s, peak RSS {peak_mb:.0f} MB")
    ok = done.returncode == 0 and elapsed <= 30 and peak_mb <= 100
    print("targets (<= 30 s, <= 100 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
