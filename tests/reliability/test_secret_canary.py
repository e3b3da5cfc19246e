"""Secret canary (issue 8): a recognisable API key goes through every path that reports or stores
something (a clean run, a run under faults with FAILED jobs and hostile media, a resume, a bad-key
401, SIGINT, `status` text and JSON, every verbosity, the Python API's exceptions and reprs, DEBUG
logs) and must show up in none of it, nor in any request to a host other than the API's.

The runs are real `batchgen` processes against in-process emulators that accept only the canary;
media is served from a second origin on another loopback host (127.0.0.2), where the emulator
counts every request that carries the key, in a header or anywhere in the URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import traceback
from pathlib import Path

import aiohttp
import pytest

from batchgen import Client
from batchgen.core.errors import BatchgenError
from batchgen.core.policy import Backoff
from batchgen.edges.client import ApiClient
from batchgen.emulator import Emulator, FaultRule
from batchgen.run.runner import run_manifest
from tests.conftest import StartEmulator
from tests.helpers import write_jsonl

CANARY = f"sk-CANARY-{secrets.token_hex(12)}"
FAULTS = (
    FaultRule("submit", "429", 0.1),
    FaultRule("submit", "accepted-500", 0.05),
    FaultRule("status", "500", 0.1),
    FaultRule("*", "reset", 0.03),
    FaultRule("media", "truncate", 0.1),
)


class Canary:
    """Counts the places searched; fails on the first one holding the key."""

    def __init__(self) -> None:
        self.checks = 0

    def absent(self, where: str, content: str | bytes) -> None:
        needle: str | bytes = CANARY.encode() if isinstance(content, bytes) else CANARY
        assert needle not in content, f"the API key leaked into {where}"
        self.checks += 1

    def folder(self, out: Path) -> int:
        files = [p for p in out.rglob("*") if p.is_file()]
        for path in files:
            self.absent(str(path), path.read_bytes())
        return len(files)


def _manifest(path: Path, n: int) -> Path:
    rows = [{"prompt": f"canary {i}"} for i in range(n)]
    rows += [
        {"prompt": "blocked [fail]"},
        {"prompt": "cdn [hostile:redirect-cdn]"},
        {"prompt": "junk [hostile:not-image]"},
        {"prompt": "metadata [hostile:redirect-metadata]"},
    ]
    write_jsonl(path, rows)
    return path


async def _cli(*args: str, key_file: Path | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SEGMIND_API_KEY", None)
    if key_file is None:
        env["SEGMIND_API_KEY"] = CANARY
    extra = ("--key-file", str(key_file)) if key_file is not None and args[0] == "run" else ()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "batchgen", *args, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _run_args(manifest: Path, out: Path, emu: Emulator, *flags: str) -> list[str]:
    return ["run", str(manifest), "--out", str(out), "--base-url", emu.base_url,
            "--rpm", "6000", "--concurrency", "8", "--expect-seconds", "0.05", *flags]  # fmt: skip


async def test_the_key_never_appears_in_outputs_logs_or_foreign_requests(
    start_emulator: StartEmulator, tmp_path: Path, long_form: bool
):
    """Runs with faults, resume, bad key, status, all verbosities: the canary is nowhere."""
    canary = Canary()
    emu = await start_emulator(
        keys=(CANARY,), media_origin=True, media_host="127.0.0.2", faults=FAULTS,
        fail_rate=0.1, seed=8,
    )  # fmt: skip
    manifest = _manifest(tmp_path / "jobs.jsonl", 40 if long_form else 12)
    key_file = tmp_path / "key.txt"
    key_file.write_text(CANARY + "\n")
    out = tmp_path / "out"

    runs = [
        _run_args(manifest, out, emu, "-v"),  # faults, FAILED, hostile media; logs every job
        _run_args(manifest, out, emu, "--retry-failed", "--status-interval", "0.05"),  # JSON lines
        _run_args(manifest, out, emu, "-q", "--retry-failed"),
        _run_args(manifest, out, emu, "--dry-run"),
        ["status", str(out)],
        ["status", str(out), "--json"],
        ["validate", str(manifest)],
    ]
    codes = []
    for i, args in enumerate(runs):
        code, stdout, stderr = await _cli(*args, key_file=key_file if i == 0 else None)
        codes.append(code)
        canary.absent(f"stdout of {args[:2]}", stdout)
        canary.absent(f"stderr of {args[:2]}", stderr)
        assert "Traceback" not in stderr
        if "--status-interval" in args:  # the JSON status lines were written, and searched
            assert any(line.startswith("{") for line in stderr.splitlines()), stderr
    assert codes[0] == 1  # FAILED and hostile jobs: the run reports failures, it does not crash
    assert codes[4:] == [0, 0, 0]
    files = canary.folder(out)
    assert {"ledger.jsonl", "metadata.jsonl", "summary.json", "failed.jsonl"} <= {
        p.name for p in out.iterdir()
    }

    stats = emu.stats(detail=False)
    assert stats["faults_total"] > 0
    assert stats["media_downloads"] > 0
    assert stats["media_with_api_key"] == 0  # no key to the media host, header or URL
    print(json.dumps({"canary_checks": canary.checks, "files": files, "server": stats}))


async def test_the_key_stays_out_of_a_refused_run_and_an_interrupted_one(
    start_emulator: StartEmulator, tmp_path: Path
):
    """A 401 (the key is wrong) and a SIGINT mid-run: messages, files and logs stay clean."""
    canary = Canary()
    wrong = await start_emulator(keys=("another-key",))
    manifest = _manifest(tmp_path / "jobs.jsonl", 4)
    out = tmp_path / "refused"
    code, stdout, stderr = await _cli(*_run_args(manifest, out, wrong, "-v"))
    assert code == 2
    assert "401" in stderr or "401" in stdout
    for where, text in (("stdout", stdout), ("stderr", stderr)):
        canary.absent(f"{where} of the 401 run", text)
    canary.folder(out)

    slow = await start_emulator(keys=(CANARY,), latency=2.0, latency_jitter=0.0)
    out = tmp_path / "interrupted"
    args = _run_args(_manifest(tmp_path / "many.jsonl", 30), out, slow, "-v", "--grace", "60")
    args[args.index("--concurrency") + 1] = "2"
    env = {**os.environ, "SEGMIND_API_KEY": CANARY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "batchgen", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    ledger = out / "ledger.jsonl"
    while not (ledger.exists() and b'"submitted"' in ledger.read_bytes()):
        assert proc.returncode is None
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout_b, stderr_b = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 130  # 30 jobs of 2 s at 2 in flight could not all be done
    canary.absent("stdout of the interrupted run", stdout_b)
    canary.absent("stderr of the interrupted run", stderr_b)
    canary.folder(out)
    assert wrong.stats()["requests_total"] >= 1  # the refused key was sent, to the API only
    assert slow.stats()["media_with_api_key"] == 0
    print(json.dumps({"canary_checks": canary.checks}))


async def test_the_python_api_keeps_the_key_out_of_exceptions_reprs_and_logs(
    start_emulator: StartEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """Errors raised by Client and run_manifest, reprs, and DEBUG logs never hold the key."""
    canary = Canary()
    caplog.set_level(logging.DEBUG)
    wrong = await start_emulator(keys=("another-key",))
    hostile = await start_emulator(keys=(CANARY,), media_origin=True, media_host="127.0.0.2")
    raised: list[BaseException] = []

    async with Client(api_key=CANARY, base_url=wrong.base_url) as client:
        canary.absent("repr(Client)", repr(client) + repr(vars(client)))
        with pytest.raises(BatchgenError) as refused:
            await client.submit("qwen-image", prompt="x")
        raised.append(refused.value)
    async with Client(api_key=CANARY, base_url=hostile.base_url, typical_seconds=0.05) as client:
        result = await client.run("qwen-image", prompt="trap [hostile:redirect-metadata]")
        with pytest.raises(BatchgenError) as trap:
            await client.download(result["output"])
        raised.append(trap.value)
    once = Backoff(max_attempts=0)  # a refused connection is retried: once is enough here
    async with Client(api_key=CANARY, base_url="http://127.0.0.1:9", backoff=once) as client:
        with pytest.raises(BatchgenError) as unreachable:
            await client.submit("qwen-image", prompt="x")
        raised.append(unreachable.value)
    async with ApiClient(CANARY, hostile.base_url) as api:
        canary.absent("repr(ApiClient)", repr(api) + str(api))
        with pytest.raises(aiohttp.InvalidURL):  # aiohttp's own errors: not ours to shape
            await api._media.get("http://[")  # type: ignore[union-attr]

    for broken in (f"{CANARY}\nX-Injected: 1", f"{CANARY}\x00"):
        with pytest.raises(ValueError, match="line break or control character") as bad_key:
            ApiClient(broken, hostile.base_url)
        raised.append(bad_key.value)

    manifest = _manifest(tmp_path / "jobs.jsonl", 2)
    result_401 = await run_manifest(
        manifest, api_key=CANARY, base_url=wrong.base_url, out=tmp_path / "out", quiet=True,
        expect_seconds=0.05,
    )  # fmt: skip
    assert result_401.exit_code == 2
    canary.absent("the run's summary", json.dumps(result_401.summary))

    for exc in raised:
        text = "".join(traceback.format_exception(exc))
        canary.absent(f"{type(exc).__name__}", f"{exc}\n{exc!r}\n{text}\n{vars(exc)}")
    names = [type(e).__name__ for e in raised]
    assert names == ["ApiError", "MediaRefused", "TransportError", "ValueError", "ValueError"]
    canary.absent("DEBUG logs", caplog.text)
    canary.folder(tmp_path / "out")
    assert hostile.stats()["media_with_api_key"] == 0
    print(json.dumps({"canary_checks": canary.checks}))


async def test_the_leak_detector_sees_a_leak(start_emulator: StartEmulator):
    """The counter the canary tests rely on does count a key sent to the media host."""
    emu = await start_emulator(keys=(CANARY,), media_origin=True, media_host="127.0.0.2")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{emu.media_url}/media/x.png", headers={"x-api-key": CANARY}):
            pass
        async with http.get(f"{emu.media_url}/v2/requests/r?token={CANARY}"):
            pass
        async with http.get(f"{emu.media_url}/media/y.png", headers={"authorization": CANARY}):
            pass
        async with http.get(f"{emu.media_url}/media/z.png"):
            pass
    assert emu.stats()["media_with_api_key"] == 3
