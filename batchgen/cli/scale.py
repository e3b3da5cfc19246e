"""Command-line pieces for scaling out: the shard/storage flags of `run`, and `batchgen merge`.

Kept apart from `cli.py` so each stays small; `cli.py` applies `scale_options` to `run` and
registers `merge`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from batchgen.core.shard import resolve_shard
from batchgen.edges.storage import StorageError, open_store, parse_storage_options
from batchgen.views.merge import MergeError, merge_output

__all__ = ["merge", "scale_kwargs", "scale_options"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED: Final = 1
EXIT_UNMERGEABLE: Final = 2
EXIT_INVALID: Final = 3


def scale_options(command: F) -> F:
    """`--shard`, `--shard-count`, `--ledger-dir`, `--storage-option` (for `run`)."""
    options = [
        click.option(
            "--shard",
            metavar="I/N",
            help="Run shard I (0-based) of N: the jobs whose id hashes to I. "
            "[default: from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID, if set]",
        ),
        click.option(
            "--shard-count",
            type=click.IntRange(min=1),
            help="N for JOB_COMPLETION_INDEX (Kubernetes); also $BATCHGEN_SHARD_COUNT.",
        ),
        click.option(
            "--ledger-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Local folder for the ledger (required when --out is an URL such as s3://).",
        ),
        click.option(
            "--storage-option",
            "storage_option",
            multiple=True,
            metavar="KEY=VALUE",
            help="fsspec option for an --out URL, e.g. endpoint_url=http://... (repeatable; "
            "prefer AWS_* variables for credentials).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def scale_kwargs(
    shard: str | None,
    shard_count: int | None,
    ledger_dir: Path | None,
    storage_option: tuple[str, ...],
) -> dict[str, Any]:
    """The run_manifest keywords for these flags; ShardError/StorageError (exit 3) if wrong."""
    return {
        "shard": resolve_shard(shard, shard_count, os.environ),
        "ledger_dir": ledger_dir,
        "storage_options": parse_storage_options(storage_option),
    }


@click.command()
@click.argument("out", metavar="OUT")
@click.option("--verify", is_flag=True, help="Also hash every image against its ledger sha256.")
@click.option("--json", "as_json", is_flag=True, help="Print the merged summary as JSON.")
@click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE")
def merge(out: str, verify: bool, as_json: bool, storage_option: tuple[str, ...]) -> None:
    """Combine the shards under OUT/shards/ into one dataset view at OUT.

    Writes OUT/metadata.jsonl (all shards' images), OUT/summary.json and OUT/failed.jsonl, after
    checking that every shard of N ran to the end and no job id is claimed twice. OUT may be an
    URL (s3://bucket/prefix). Exit codes: 0 merged, 1 merged but some jobs failed, 2 not
    mergeable (the reasons are printed, nothing is written), 3 no shards or unusable OUT.
    """
    try:
        store = open_store(out, parse_storage_options(storage_option))
        summary, found = merge_output(store, verify=verify)
    except (MergeError, StorageError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    if found:
        for line in found[:20]:
            click.echo(f"  {line}", err=True)
        more = f" (first 20 of {len(found)})" if len(found) > 20 else ""
        click.echo(f"not merged: {len(found)} problem(s){more}; nothing was written", err=True)
        sys.exit(EXIT_UNMERGEABLE)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        outcome = summary["outcome"]
        click.echo(
            f"merged {len(summary['shards'])} shard(s): {outcome['completed']:,} images, "
            f"{outcome['failed']:,} failed, spend ${summary['spend_usd']:.2f}"
        )
        click.echo(f"output: {store.url}/ (metadata.jsonl, summary.json)")
    sys.exit(EXIT_FAILED if summary["outcome"]["failed"] else 0)
