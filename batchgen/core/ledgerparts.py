"""Readings of ledger lines, kept apart from replay (`lifecycle.py`) to keep it short: the line
reader every fold uses (`LedgerLines`), the checked stdlib parse, the folder facts (an `uploaded`
record, a learned `rate`) and what a `completed` record says (model, cost, the other images)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

__all__ = [
    "LedgerDamage",
    "LedgerLines",
    "as_number",
    "as_text",
    "cost_of",
    "model_of",
    "more_files",
    "parse_record",
    "rate_of",
    "upload_of",
]


def upload_of(record: dict[str, Any]) -> tuple[str, str, str] | None:
    """(host, sha256, url) of an `uploaded` record (events.Uploaded), or None when malformed."""
    digest, url, host = record.get("sha256"), record.get("url"), record.get("host")
    if type(digest) is str and type(url) is str and url and type(host) is str:
        return host, digest, url
    return None


def rate_of(record: dict[str, Any], before: float | None) -> float | None:
    """The rate a `rate` record (events.RateLearned) gives `--rpm auto`, else `before`."""
    rpm: Any = record.get("rpm")  # JSON: any type
    return float(rpm) if type(rpm) in (int, float) and rpm > 0 else before


def model_of(record: dict[str, Any]) -> str | None:
    """The model of a `completed` record, from its metadata row (None: a ledger from before)."""
    row = record.get("row")
    return as_text(row.get("model")) if type(row) is dict else None


def cost_of(record: dict[str, Any]) -> float | None:
    """What the server charged for a `completed` job (its `metrics.cost`), if it said."""
    metrics = record.get("metrics")
    return as_number(metrics.get("cost")) if type(metrics) is dict else None


def as_text(value: Any) -> str | None:
    """A JSON value as a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def as_number(value: Any) -> float | None:
    """A JSON number as a float (not a bool), else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def more_files(files: Any) -> tuple[tuple[str, str], ...]:
    """(file, sha256) of images 1.. of a `completed` record's `files` (image 0 is its `file`)."""
    if type(files) is not list:
        return ()
    return tuple(
        (str(f.get("file")), str(f.get("sha256"))) for f in files[1:] if isinstance(f, dict)
    )


def parse_record(raw: bytes) -> dict[str, Any]:
    """`json.loads(raw)`, checked to be a ledger record (a dict with a text `event`).

    `replay` tries `orjson.loads` first (about twice as fast as the stdlib on ledger lines, and
    the parse is most of a replay). orjson is stricter than json.loads, never looser: valid UTF-8
    JSON only, no NaN, no BOM, 64-bit integers, no lone surrogates; what it accepts, json.loads
    reads as the same object. Everything it refuses comes here, so the verdict and the message
    are `json.loads`'s own (tests/test_lifecycle.py checks this on arbitrary byte edits).
    """
    record = json.loads(raw)
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        raise ValueError("not a ledger record")
    return record


class LedgerDamage(ValueError):
    """A line before the last one is not a ledger record: the file was changed or damaged."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


class LedgerLines:
    """Ledger lines as (line number, record, event), for every fold of a ledger (`replay`,
    `finalstate.fold_states`): orjson first (`ledgerparts.parse_record` says why it agrees with
    json.loads), the stdlib for the rest; a line that does not parse raises `LedgerDamage`
    naming it, unless it is the last and has no newline: a torn write, held back until we know
    no line follows, then left out (`torn`). `valid_bytes`: the length of the records given."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self.lines = lines
        self.valid_bytes = 0
        self.torn = False

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any], str]]:
        loads = orjson.loads
        held: tuple[int, bytes, ValueError] | None = None  # unparsable, without its newline
        for number, raw in enumerate(self.lines, start=1):
            if held is not None:  # it was not the last line after all: damage, not a torn write
                raise _damage(*held)
            record: Any = None
            try:  # noqa: SIM105 - a with-block per line costs ~10 % of the replay
                record = loads(raw)
            except ValueError:  # orjson.JSONDecodeError is a ValueError
                pass
            if type(record) is not dict or type(event := record.get("event")) is not str:
                try:
                    record = parse_record(raw)
                except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError: ValueErrors
                    if raw.endswith(b"\n"):
                        raise _damage(number, raw, exc) from None
                    held = (number, raw, exc)
                    continue
                event = record["event"]
            yield number, record, event
            self.valid_bytes += len(raw)
        self.torn = held is not None


def _damage(number: int, raw: bytes, exc: ValueError) -> LedgerDamage:
    if not raw.strip():
        return LedgerDamage(number, "empty line")
    return LedgerDamage(number, f"not a ledger record ({exc})")
