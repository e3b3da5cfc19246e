"""`DIR/index.html` in a real headless Chromium (Debian's `chromium`, driven by playwright):
opened from disk with no network, every thumbnail decodes, a filter click narrows the gallery,
and a prompt's <script> stays text. A screenshot is left in the test artefacts.

The browser is a test-time need: CI installs it (`.ci/run`). If it is missing this test fails,
it does not skip: a report nobody has seen render is not tested.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from tests.views import FOX, artifacts, cells_manifest, invoke, run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def opened(page_file: Path, tmp_path: Path) -> Iterator[tuple[Page, list[str]]]:
    """`page_file` loaded in a fresh offline Chromium; the list collects the page's errors."""
    assert Path(CHROMIUM).is_file(), "chromium is missing: apt-get install chromium (see .ci/run)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile: nothing from earlier runs
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            offline=True,
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            yield page, errors
        finally:
            browser.close()


@pytest.mark.timeout(180)  # a browser start on a loaded 2-core machine takes seconds
def test_report_renders_offline_and_filters(tmp_path: Path):
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "defaults: {aspect_ratio: '1:1', image_format: jpeg}\n"
        "sweep:\n  guidance: [2.5, 4, 7]\n  seed: [1, 2]\n"
        "jobs:\n  - prompt: a lighthouse in a storm\n"
    )
    out = tmp_path / "out"
    assert run(manifest, out).stats.completed == 6
    run(cells_manifest(tmp_path / "c.jsonl"), out)  # adds FOX images and failed BIRD jobs
    done = invoke("report", str(out))
    assert done.exit_code == 0, done.output
    with opened(out / "index.html", tmp_path) as (page, errors):
        widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        assert len(widths) == 8  # 6 lighthouses + 2 foxes
        assert all(w > 0 for w in widths)
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert FOX in page.inner_text("#gallery")
        assert page.inner_text("#shown") == "8"
        assert "Failures (3)" in page.inner_text("#failures")
        page.select_option('select[data-param="guidance"]', label="7")
        visible = page.locator(".card:visible")
        assert visible.count() == 2  # guidance 7: two lighthouse seeds (no fox at 7)
        assert page.inner_text("#shown") == "2"
        assert all("guidance7" in t.replace(" ", "").replace("\t", "").replace("\n", "")
                   for t in visible.all_inner_texts())  # fmt: skip
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, artifacts() / "report.png")
        page.click("#reset")
        assert page.locator(".card:visible").count() == 8
        assert errors == []


@pytest.mark.timeout(180)
def test_an_edit_report_shows_each_input_beside_its_output(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    for name, color in (("red.png", (200, 30, 30)), ("blue.png", (30, 30, 200))):
        Image.new("RGB", (64, 48), color).save(tmp_path / "photos" / name, format="PNG")
    manifest = tmp_path / "edit.yaml"
    manifest.write_text(
        "model: qwen-image-edit\ndefaults: {seed: 7}\n"
        "sweep:\n  image: {glob: 'photos/*.png'}\n  prompt: [make it winter, make it night]\n"
    )
    out = tmp_path / "out"
    assert run(manifest, out).stats.completed == 4
    done = invoke("report", str(out))
    assert done.exit_code == 0, done.output
    with opened(out / "index.html", tmp_path) as (page, errors):
        cards = page.locator(".card")
        assert cards.count() == 4
        for k in range(4):  # each card: its input's picture, an arrow, the edit
            card = cards.nth(k)
            sizes = card.locator("img").evaluate_all(
                "els => els.map(e => [e.className, e.naturalWidth])"
            )
            assert [c for c, _ in sizes] == ["input", "output"]
            assert all(w > 0 for _, w in sizes)
            assert "\u2192" in card.inner_text()
        alts = page.eval_on_selector_all("img.input", "els => els.map(e => e.alt)")
        assert sorted(alts) == ["input blue.png"] * 2 + ["input red.png"] * 2
        cells = page.locator(".cell.image").evaluate_all(  # the sweep: inputs beside edits
            "els => els.map(e => [e.title, getComputedStyle(e).backgroundImage])"
        )
        assert sorted(t for t, _ in cells).count("input") == 2
        assert len(cells) == 6
        assert all(b.startswith('url("data:image/jpeg') for _, b in cells)
        page.screenshot(path=str(tmp_path / "edit.png"), full_page=True)
        shutil.copy(tmp_path / "edit.png", artifacts() / "report-edit.png")
        cards.first.click()  # the viewer: the input full size, then the output
        viewer = page.locator("#viewer-body")
        assert viewer.locator("h3").all_inner_texts() == ["input", "output"]
        assert viewer.locator("img").count() == 2
        assert "(image)" in viewer.inner_text()  # the inputs row names the slot
        assert errors == []
