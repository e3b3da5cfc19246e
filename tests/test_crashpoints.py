"""The crash/fault hooks' settings: parsed once at import, strict, and inert when unset."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from batchgen.core.lifecycle import replay
from batchgen.edges import crashpoints
from batchgen.edges.crashpoints import _parse_crash, _parse_fault
from batchgen.run.finish import double_charge_list


def test_specs_parse() -> None:
    """NAME:N and OP:TARGET:N[:ERRNO], with per-op default errnos."""
    assert _parse_crash(None) is None
    assert _parse_crash("post-sent:3") == ("post-sent", 3)
    assert _parse_fault("write:image:2") == ("write", "image", 2, errno.ENOSPC)
    assert _parse_fault("fsync:ledger:1") == ("fsync", "ledger", 1, errno.EIO)
    assert _parse_fault("write:ledger:4:EDQUOT") == ("write", "ledger", 4, errno.EDQUOT)


@pytest.mark.parametrize("spec", ["intent", "intent:0", ":2", "intent:x"])
def test_bad_crash_spec_is_refused(spec: str) -> None:
    """A typo must not silently disarm a crash test."""
    with pytest.raises(ValueError, match="BATCHGEN_CRASH_AT"):
        _parse_crash(spec)


@pytest.mark.parametrize("spec", ["write:image", "write:image:0", "write:image:1:ENOPE"])
def test_bad_fault_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="BATCHGEN_FAULT"):
        _parse_fault(spec)


def test_unarmed_hooks_do_nothing() -> None:
    """In production (no variables set) every hook is a no-op."""
    assert crashpoints._CRASH is None
    assert crashpoints._FAULT is None
    crashpoints.crashpoint("intent")
    crashpoints.fault("write", "image")


def test_armed_crashpoint_kills_at_the_nth_time() -> None:
    """`NAME:N` lets N-1 passes through and SIGKILLs the process at the Nth, saying where."""
    code = (
        "from batchgen.edges.crashpoints import crashpoint\nfor i in range(5): crashpoint('x', i)\n"
    )
    env = {**os.environ, "BATCHGEN_CRASH_AT": "x:3"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == -9
    assert "crashpoint x #3: 2" in done.stderr


def test_double_charge_list_comes_from_the_ledger() -> None:
    """A submit whose run died unanswered is listed with the request the job kept."""
    lines = [
        b'{"v":1,"t":1.0,"event":"run"}\n',
        b'{"v":1,"t":2.0,"event":"intent","job":"a","attempt":0}\n',
        b'{"v":1,"t":3.0,"event":"intent","job":"b","attempt":0}\n',
        b'{"v":1,"t":4.0,"event":"submitted","job":"b","request_id":"rb"}\n',
        b'{"v":1,"t":5.0,"event":"run"}\n',
        b'{"v":1,"t":6.0,"event":"intent","job":"a","attempt":0}\n',
        b'{"v":1,"t":7.0,"event":"submitted","job":"a","request_id":"ra"}\n',
    ]
    assert double_charge_list(replay(lines)) == [
        {"job": "a", "lost_answers": 1, "request_id": "ra"}
    ]
