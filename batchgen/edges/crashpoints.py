"""Test hooks for the reliability campaign: die or fail at named points. Off in production.

Crash safety is a claim about *moments* (after the intent is durable, after the POST's answer
arrived but before it is recorded, ...). A test that SIGKILLs a process from outside lands at a
random moment; these hooks let it land at an exact one, so a failing case replays. Both hooks are
armed only by environment variables read once at import; unset (production), each call costs one
global lookup and one comparison.

`BATCHGEN_CRASH_AT=NAME:N` -- SIGKILL this process the Nth time `crashpoint(NAME)` is reached:

    intent      a submit's `intent` record is durable; the POST is not sent yet
    post-sent   the POST's answer arrived; nothing about it is recorded yet
    downloaded  the image is verified and its temp file fsync'd; not renamed to its final name
    renamed     the image is under its final name; the ledger does not say `completed` yet
    ledger      any ledger record is durable (N counts this process's records): a kill "N
                events into the run", at a moment defined by progress rather than by a clock

`BATCHGEN_FAULT=OP:TARGET:N[:ERRNO]` -- from the Nth `fault(OP, TARGET)` on, raise OSError(ERRNO)
instead of doing the operation, like a disk that has filled up and stays full. OP: write | fsync;
TARGET: ledger | image | outputs (metadata.jsonl, failed.jsonl rebuilt at the end); ERRNO: a
name from `errno` (default ENOSPC for write, EIO for fsync).
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Final

__all__ = ["CRASH_ENV", "FAULT_ENV", "crashpoint", "fault"]

CRASH_ENV: Final = "BATCHGEN_CRASH_AT"
FAULT_ENV: Final = "BATCHGEN_FAULT"
_DEFAULT_ERRNO: Final = {"write": "ENOSPC", "fsync": "EIO"}


def _parse_crash(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, count = spec.rpartition(":")
    if not name or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{CRASH_ENV}={spec!r}: expected NAME:N with N >= 1")
    return name, int(count)


def _parse_fault(spec: str | None) -> tuple[str, str, int, int] | None:
    if not spec:
        return None
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit() or int(parts[2]) < 1:
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected OP:TARGET:N[:ERRNO] with N >= 1")
    op, target, count = parts[0], parts[1], int(parts[2])
    name = parts[3] if len(parts) == 4 else _DEFAULT_ERRNO.get(op, "EIO")
    code = getattr(errno, name, None)
    if not isinstance(code, int):
        raise ValueError(f"{FAULT_ENV}={spec!r}: {name!r} is not an errno name")
    return op, target, count, code


_CRASH: Final = _parse_crash(os.environ.get(CRASH_ENV))
_FAULT: Final = _parse_fault(os.environ.get(FAULT_ENV))
_seen: dict[str, int] = {}


def crashpoint(name: str, detail: object = None) -> None:
    """Reached a named moment: SIGKILL the process if `BATCHGEN_CRASH_AT` says so.

    `detail` (e.g. the file being written) goes to stderr first, so a test knows which job
    the kill caught even when several were at the same stage.
    """
    if _CRASH is None or _CRASH[0] != name:
        return
    _seen[name] = seen = _seen.get(name, 0) + 1
    if seen >= _CRASH[1]:
        os.write(2, f"batchgen: crashpoint {name} #{seen}: {detail}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


def fault(op: str, target: str) -> None:
    """About to `op` (write | fsync) `target`: raise OSError if `BATCHGEN_FAULT` says so."""
    if _FAULT is None or _FAULT[0] != op or _FAULT[1] != target:
        return
    key = f"{op}:{target}"
    _seen[key] = seen = _seen.get(key, 0) + 1
    if seen >= _FAULT[2]:
        code = _FAULT[3]
        raise OSError(code, f"{os.strerror(code)} (injected by {FAULT_ENV})")
