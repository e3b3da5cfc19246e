"""How fast a run's ledger is indexed into the catalogue, and what the page cache costs in RSS.

    python bench/catalog_index.py [--records 200000] [--cache-kib K]

What the end of every run does (`run/reuse.Reuse.record` -> `ledgerindex.index_ledger`): a
synthetic ledger of `--records` `completed` records (explicit ids, seeded random seeds and
hashes, qwen-image rows as a run writes them) is indexed into a fresh catalogue file, then a
second such ledger into the same file (a catalogue that already holds a run). For each: CPU and
wall seconds, and how far the process's peak RSS grew. `--cache-kib` overrides the catalogue's
`PRAGMA cache_size` (default: what `Catalog` sets), to compare cache sizes in one sitting.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from batchgen.edges.catalog import Catalog
from batchgen.edges.ledgerindex import index_ledger


def write_ledger(path: Path, records: int, tag: str) -> None:
    rand = random.Random(tag)
    with path.open("w") as handle:
        handle.write(json.dumps({"v": 1, "t": 1.7e9, "event": "run", "model": "qwen-image"}) + "\n")
        for i in range(records):
            job, seed = f"{tag}-{i:07d}", rand.randrange(2**31)
            sha256, request = f"{rand.getrandbits(256):064x}", f"{rand.getrandbits(128):032x}"
            file = f"data/{i // 1000:05d}/{job}.png"
            row = {"file_name": file, "id": job, "model": "qwen-image", "prompt": f"scale {i}",
                   "seed": seed, "request_id": request, "cost": 0.12}  # fmt: skip
            record = {"v": 1, "t": 1.7e9, "event": "completed", "job": job, "request_id": request,
                      "file": file, "sha256": sha256, "bytes": 2417, "format": "png", "seed": seed,
                      "metrics": {"inference_time": 0.06, "cost": 0.12},
                      "output": "http://127.0.0.1/media/x.png", "row": row}  # fmt: skip
            handle.write(json.dumps(record) + "\n")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--cache-kib", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ledgers = {"fresh": folder / "a.jsonl", "non-empty": folder / "b.jsonl"}
        for tag, path in zip("ab", ledgers.values(), strict=True):
            write_ledger(path, args.records, tag)
        with Catalog(folder / "catalog.sqlite") as cat:
            if args.cache_kib is not None:
                cat._db.execute(f"PRAGMA cache_size = -{args.cache_kib}")
            (cache,) = cat._db.execute("PRAGMA cache_size").fetchone()
            out: dict[str, object] = {"records": args.records, "cache_size": cache}
            base = _maxrss_mb()
            for name, path in ledgers.items():
                cpu, wall = time.process_time(), time.perf_counter()
                assert index_ledger(cat, path, tmp) == args.records
                out[name] = {
                    "cpu_s": round(time.process_time() - cpu, 2),
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "peak_rss_growth_mb": round(_maxrss_mb() - base, 1),
                }
        size = sum(p.stat().st_size for p in folder.glob("catalog.sqlite*"))
        out["file_mb"] = round(size / 2**20, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
