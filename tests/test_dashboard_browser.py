"""The live dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright):
`batchgen run --emulator --serve 0` as a process, the page opened once and never reloaded. The
done count and the gallery grow by themselves, a filter narrows the gallery, one image opens
full size with its facts, a failed job shows its error and the retry command, the sweep grid
marks failed cells, and a prompt's <script> stays text. Then `batchgen serve` on a sharded
output shows every shard and the whole. Screenshots are left in the test artefacts.

As for the report test: if chromium is missing this fails, it does not skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from batchgen.core.shard import Shard
from batchgen.emulator import EmulatorConfig
from batchgen.run.runner import run_manifest
from tests.test_report_browser import ARGS, CHROMIUM
from tests.views import FAST, FOX, artifacts

SECRET = "sk-never-shown-0123456789"
BIRD = "a blue bird [fail]"
ANNOUNCE = "batchgen dashboard on "


def _manifest(path: Path) -> Path:
    """3 prompts x 3 guidance x 4 seeds = 36 jobs; the 12 BIRD jobs fail (the emulator's marker)."""
    path.write_text(
        "defaults: {aspect_ratio: '1:1', image_format: png}\n"
        "sweep:\n  guidance: [2.5, 4, 7]\n  seed: [1, 2, 3, 4]\n"
        "jobs:\n  - prompt: a lighthouse in a storm\n"
        f"  - prompt: {FOX!r}\n  - prompt: {BIRD!r}\n",
        encoding="utf-8",
    )
    return path


def _process(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchgen", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SEGMIND_API_KEY": SECRET, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _url(stream: object, marker: str) -> str:
    for _ in range(50):
        line = stream.readline()  # type: ignore[attr-defined]
        if marker in line:
            return str(line.split(marker, 1)[1].split()[0])
    raise AssertionError(f"no {marker!r} line")


def _number(page: Page, selector: str) -> int:
    return int(page.inner_text(selector))


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Ctrl-C, and again if it was still running a job (the first one lets jobs finish)."""
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
            return proc.returncode, out, err
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    out, err = proc.communicate()
    return proc.returncode, out, err


@pytest.mark.timeout(240)
def test_live_dashboard_beside_a_run(tmp_path: Path):
    assert Path(CHROMIUM).is_file(), "chromium is missing: apt-get install chromium (see .ci/run)"
    manifest = _manifest(tmp_path / "m.yaml")
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        # 4 submits per emulator minute (1 s): the 36 jobs take about 9 s, long enough to watch
        proc = _process("run", str(manifest), "--out", str(tmp_path / "out"), "--emulator",
                        "--rpm", "4", "--serve", "0", "--serve-linger")  # fmt: skip
        try:
            url = _url(proc.stderr, ANNOUNCE)
            assert url.startswith("http://127.0.0.1:")
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.evaluate("window.__loadedOnce = 1")  # a reload would forget it
            page.wait_for_function(
                "() => Number(document.getElementById('g-done').textContent) >= 1"
            )
            first_done = _number(page, "#g-done")
            first_cards = page.locator(".card").count()
            assert first_done < 24, "the run ended before the page could watch it grow"
            page.wait_for_function(
                "n => Number(document.getElementById('g-done').textContent) > n[0]"
                " && document.querySelectorAll('.card').length > n[1]",
                arg=[first_done, first_cards],
            )
            page.wait_for_function(  # the whole run, streamed
                "() => document.getElementById('g-done').textContent === '24'"
                " && document.getElementById('g-failed').textContent === '12'",
                timeout=120_000,
            )
            page.wait_for_function("() => document.querySelectorAll('.card').length === 24")
            assert page.evaluate("window.__loadedOnce") == 1  # never reloaded
            assert page.inner_text("#live") == "live"

            page.wait_for_function(
                "() => document.getElementById('summary-body').innerText.includes('exit_code')"
            )
            summary = page.inner_text("#summary-body")
            assert "exit_code" in summary
            assert "{" not in summary  # a readable table, not raw JSON
            assert FOX in page.inner_text("#gallery")
            assert page.evaluate("typeof window.pwned") == "undefined"

            page.select_option('select[data-param="guidance"]', label="7")
            assert page.locator(".card:visible").count() == 8  # 2 prompts x 4 seeds
            assert page.inner_text("#shown") == "8"
            assert all(
                "guidance7" in "".join(t.split())
                for t in page.locator(".card:visible").all_inner_texts()
            )

            page.locator(".card:visible").first.click()
            viewer = page.locator("#viewer")
            assert viewer.is_visible()
            page.wait_for_function("() => { const i = document.querySelector('#viewer img');"
                                   " return i && i.complete && i.naturalWidth > 0; }")  # fmt: skip
            facts = page.inner_text("#viewer")
            for word in ("request_id", "seed", "queue_seconds", "inference_seconds", "guidance"):
                assert word in facts, word
            page.screenshot(path=str(tmp_path / "viewer.png"))
            page.click("#viewer-close")

            failures = page.inner_text("#failures")
            assert "Failures (12)" in failures
            assert "content filter" in failures  # the emulator's error for [fail]
            assert "--retry-failed" in failures
            assert BIRD in failures

            page.select_option("#grid-x", "guidance")
            page.select_option("#grid-y", "seed")
            page.wait_for_function("() => document.querySelectorAll('#grid .cell').length === 36")
            assert page.locator("#grid .cell.failed").count() == 12
            assert page.locator("#grid .cell.image").count() == 24
            assert "24 images, 12 failed, 0 not generated" in page.inner_text("#grid-note")

            page.click("#reset")
            assert page.locator(".card:visible").count() == 24
            assert SECRET not in page.content()
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            for name in ("live.png", "viewer.png"):
                shutil.copy(tmp_path / name, artifacts() / f"dashboard-{name}")
            assert errors == []
        finally:
            code, out, err = _stop(proc)
            browser.close()
    assert code == 1, err  # some jobs failed: the run's own exit code, after Ctrl-C
    assert "24 completed, 12 failed" in out


def _shard_run(manifest: Path, out: Path, index: int) -> None:
    asyncio.run(
        run_manifest(
            manifest,
            out=out,
            overrides=FAST,
            shard=Shard(index, 2),
            quiet=True,
            emulator=EmulatorConfig(seed=7 + index, latency=0.02),
        )
    )


@pytest.mark.timeout(180)
def test_serve_shows_every_shard(tmp_path: Path):
    manifest = _manifest(tmp_path / "m.yaml")
    out = tmp_path / "out"
    for index in (0, 1):
        _shard_run(manifest, out, index)
    proc = _process("serve", str(out), "--port", "0")
    try:
        url = _url(proc.stdout, " on ")
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
                viewport={"width": 1280, "height": 900},
            )  # fmt: skip
            try:
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function("() => document.querySelectorAll('.shard-row').length === 3")
                rows = page.locator(".shard-row").all_inner_texts()
                assert [r.split()[0] for r in rows] == ["0-of-2", "1-of-2", "whole"]
                per_shard = [int(r.split()[1]) for r in rows]
                assert per_shard[0] + per_shard[1] == per_shard[2] == 24
                assert min(per_shard[:2]) > 0
                page.wait_for_function("() => document.querySelectorAll('.card').length === 24")
                assert "--shard 0/2" in page.inner_text("#failures")
                page.screenshot(path=str(tmp_path / "shards.png"), full_page=True)
                shutil.copy(tmp_path / "shards.png", artifacts() / "dashboard-shards.png")
            finally:
                browser.close()
    finally:
        code, _, err = _stop(proc)
    assert code == 0, err
