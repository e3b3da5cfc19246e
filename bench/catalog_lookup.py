"""How fast the reuse step finds jobs in a large catalogue (issue 20: >= 10,000 jobs/s at 1M rows).

    python bench/catalog_lookup.py [--rows 1000000] [--lookups 200000]

Builds a catalogue of `--rows` images in a temporary folder (through `Catalog.add`, as runs and
`catalog add` write it), then times what the reuse step does per job before any file is touched:
compute the job's fingerprint and look it up (`Reuse.lookup`, batches of `BATCH`). Half of the
looked-up jobs are in the catalogue and half are not, in random order (seeded), so neither the
page cache order nor a hit-only path flatters the figure. Checking a hit's file (a hash) is
disk-bound and not part of it. Prints the build rate, the lookup rate with and without the
fingerprinting, and the file size.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from batchgen.core.fingerprint import fingerprint
from batchgen.core.jobs import Job
from batchgen.edges.catalog import BATCH, Catalog, Entry
from batchgen.run.reuse import Reuse


def job(n: int) -> Job:
    params = {
        "prompt": f"a photograph of subject number {n}, golden hour",
        "seed": n % 2**31,
        "guidance": 2.5 + n % 7,
        "steps": 30,
        "aspect_ratio": "1:1",
        "image_format": "png",
    }
    return Job(f"job-{n}", "qwen-image", params)


def build(cat: Catalog, rows: int) -> float:
    def entries():  # type: ignore[no-untyped-def]
        for n in range(rows):
            key = fingerprint(job(n))
            assert key is not None
            yield Entry(key, "/data/out", f"job-{n}.png", f"{n:064x}", 3000, f"r{n}", 0.12,
                        1.7e9 + n, f"job-{n}", 0.4)  # fmt: skip

    started = time.perf_counter()
    assert cat.add(entries()) == rows
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()
    rand = random.Random(20)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        with Catalog(path) as cat:
            built = build(cat, args.rows)
            print(f"built {args.rows:,} rows in {built:.1f} s ({args.rows / built:,.0f} rows/s)")
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        wanted = [rand.randrange(args.rows) if i % 2 else args.rows + i
                  for i in range(args.lookups)]  # fmt: skip
        rand.shuffle(wanted)
        jobs = [job(n) for n in wanted]
        with Catalog(path) as cat:  # a fresh connection: a new run's cold start
            reuse = Reuse(cat, (cat,))
            started = time.perf_counter()
            hits = 0
            for i in range(0, len(jobs), BATCH):
                keys = [k for k in map(fingerprint, jobs[i : i + BATCH]) if k is not None]
                found = reuse.lookup(keys)
                hits += sum(1 for k in keys if k in found)
            total = time.perf_counter() - started
            keys = [k for k in map(fingerprint, jobs) if k is not None]
            started = time.perf_counter()
            for i in range(0, len(keys), BATCH):
                reuse.lookup(keys[i : i + BATCH])
            lookup = time.perf_counter() - started
    expected = sum(1 for n in wanted if n < args.rows)
    assert hits == expected, (hits, expected)
    print(f"catalogue file: {size / 2**20:,.0f} MiB")
    print(f"fingerprint + lookup: {len(jobs):,} jobs in {total:.2f} s = "
          f"{len(jobs) / total:,.0f} jobs/s ({hits:,} found)")  # fmt: skip
    print(f"lookup alone:         {len(jobs):,} jobs in {lookup:.2f} s = "
          f"{len(jobs) / lookup:,.0f} jobs/s")  # fmt: skip


if __name__ == "__main__":
    main()
