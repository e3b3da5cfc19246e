"""The names of every file and folder batchgen writes in an output folder, in one place.

    OUT/
      {id}.{ext}            images (the `filename` template); past `folder_size` jobs in
      data/00000/, ...      PART_ROOT parts, each with its own metadata.jsonl (imagefolder)
      ledger.jsonl          LEDGER_NAME: every job event, append-only, fsync'd (the run's memory)
      metadata.jsonl        METADATA_NAME: one row per image, rebuilt from the ledger at the end
      summary.json          SUMMARY_NAME: the last run's outcome
      failed.jsonl          FAILED_NAME: the failed jobs, as a manifest `batchgen validate` accepts
      index.html            REPORT_NAME: `batchgen report`
      .batchgen.lock        LOCK_NAME: one run per folder (a flock)
      shards/I-of-N/        SHARDS_DIR: a shard's own state files (see `run/layout.py`)
      .*.part               PART_SUFFIX: a file being written; renamed into place, or removed by
                            the next run

*Where* each of these lives (local disk, an object store, a `--ledger-dir`) is `run/layout.py`'s
business; this module only names them, so that the writers (`edges/`), the runner (`run/`) and
the readers (`views/`) cannot disagree. Pure constants: importable from every layer.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FAILED_NAME",
    "LEDGER_NAME",
    "LOCK_NAME",
    "METADATA_NAME",
    "PART_ROOT",
    "PART_SUFFIX",
    "REPORT_NAME",
    "SHARDS_DIR",
    "STATE_FILES",
    "SUMMARY_NAME",
]

LEDGER_NAME: Final = "ledger.jsonl"
METADATA_NAME: Final = "metadata.jsonl"
SUMMARY_NAME: Final = "summary.json"
FAILED_NAME: Final = "failed.jsonl"
REPORT_NAME: Final = "index.html"
LOCK_NAME: Final = ".batchgen.lock"
SHARDS_DIR: Final = "shards"  # OUT/shards/I-of-N/: one shard's state files
PART_ROOT: Final = "data"  # OUT/data/00000/...: images of a run past `folder_size` jobs
PART_SUFFIX: Final = ".part"  # a temp file: `.{name}.{random}.part`, never a final name

# A run's state, as opposed to its images: what `Layout` keeps beside the ledger and publishes to
# an object store at the end of a run (the ledger first here; it is published last).
STATE_FILES: Final = (LEDGER_NAME, METADATA_NAME, SUMMARY_NAME, FAILED_NAME)
