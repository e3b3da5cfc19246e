"""`batchgen status`: job counts by state from a folder's ledger, read-only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from batchgen.core.folder import LEDGER_NAME, SHARDS_DIR
from batchgen.core.lifecycle import LedgerDamage
from batchgen.views.status import EXIT_DAMAGED, EXIT_MISSING, read_ledger, status_lines, summarize

__all__ = ["status"]


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def status(folder: Path, as_json: bool) -> None:
    """Show job counts by state from DIR/ledger.jsonl, read-only (safe while a run is going).

    Exit codes: 0 shown, 2 the ledger is damaged (the line is named), 3 no ledger in DIR.
    """
    try:
        snapshot = read_ledger(folder)
    except LedgerDamage as exc:
        click.echo(f"error: {folder / LEDGER_NAME} is damaged at {exc}", err=True)
        sys.exit(EXIT_DAMAGED)
    except FileNotFoundError:
        hint = (
            "a shard's folder, OUT/shards/I-of-N"
            if (folder / SHARDS_DIR).is_dir()
            else "a run's --out"
        )
        click.echo(f"error: no ledger at {folder / LEDGER_NAME} (is DIR {hint}?)", err=True)
        sys.exit(EXIT_MISSING)
    except OSError as exc:
        click.echo(f"error: cannot read {folder / LEDGER_NAME}: {exc}", err=True)
        sys.exit(EXIT_MISSING)
    summary = summarize(
        snapshot.replay,
        ledger=str(snapshot.path),
        last_event_at=snapshot.last_event_at,
        planned=snapshot.planned,
    )
    if as_json:
        click.echo(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        for line in status_lines(summary):
            click.echo(line)
