"""`batchgen run` as the README shows it: a real process, the built-in emulator, real images."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from PIL import Image

from tests.helpers import cli, start_cli, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_with_emulator_writes_images_and_resumes(tmp_path: Path):
    """The README's main command makes 8 images; the same command again skips them all."""
    out = tmp_path / "out"
    first = cli("run", str(ROOT / "jobs" / "quickstart.yaml"), "--emulator", "--out", str(out),
                cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "8 completed, 0 failed" in first.stdout
    images = sorted(out.glob("*.jpg"))
    assert len(images) == 8
    for path in images:
        with Image.open(path) as image:
            assert image.format == "JPEG"
    rows = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert sorted(r["file_name"] for r in rows) == sorted(p.name for p in images)
    again = cli("run", str(ROOT / "jobs" / "quickstart.yaml"), "--emulator", "--out", str(out),
                cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0
    assert "8 already done" in again.stdout
    assert len(list(out.glob("*.jpg"))) == 8


def test_invalid_manifest_exits_3_and_sends_nothing(tmp_path: Path):
    """A broken manifest is reported with file:line and exit code 3."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  - prompt: ok\n  - prompt: x\n    steps: 500\n")
    result = cli("run", str(bad), "--emulator", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 3
    assert "bad.yaml:4" in result.stderr
    assert "steps" in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_key_is_a_clear_error(tmp_path: Path):
    """Without --emulator and without a key, the run refuses before sending anything."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text("jobs:\n  - prompt: a fox\n")
    result = cli("run", str(manifest), "--base-url", "http://127.0.0.1:9", cwd=tmp_path,
                 env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 3
    assert "SEGMIND_API_KEY" in result.stderr


def test_sigint_stops_submitting_finishes_in_flight_and_exits_130(tmp_path: Path):
    """Ctrl-C: no new submits, jobs in flight are written, exit 130; the ledger replays."""
    manifest = tmp_path / "many.jsonl"
    write_jsonl(manifest, ({"prompt": f"p{i}"} for i in range(200)))
    out = tmp_path / "out"
    proc = start_cli(
        "run", str(manifest), "--emulator", "--out", str(out), "--rpm", "20", cwd=tmp_path
    )
    ledger = out / "ledger.jsonl"
    for _ in range(600):  # wait (up to 30 s) until a job has completed
        if ledger.exists() and '"event":"completed"' in ledger.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "stopped: interrupted" in stdout
    records = [json.loads(x) for x in ledger.read_text().splitlines()]
    submitted = {r["job"] for r in records if r["event"] == "submitted"}
    completed = {r["job"] for r in records if r["event"] == "completed"}
    assert submitted == completed  # every paid job was finished and written
    assert 0 < len(completed) < 200


def test_mode_sync_from_the_manifest(tmp_path: Path):
    """`mode: sync` runs each job as one v1 call, then resumes like queue mode."""
    manifest = tmp_path / "sync.yaml"
    manifest.write_text(
        "mode: sync\nrpm: 600\nconcurrency: 4\n"
        "jobs:\n  - prompt: a fox\n  - prompt: a cat\n    image_format: jpeg\n"
    )
    out = tmp_path / "out"
    result = cli("run", str(manifest), "--emulator", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 completed" in result.stdout
    assert sorted(p.suffix for p in out.iterdir() if p.suffix in (".png", ".jpg")) == [
        ".jpg",
        ".png",
    ]
    again = cli("run", str(manifest), "--emulator", "--out", str(out), cwd=tmp_path)
    assert "2 already done" in again.stdout


def test_edited_manifest_runs_new_and_changed_jobs_only(tmp_path: Path):
    """Between runs: a changed job and a new one run; a removed one is left alone and reported."""
    manifest = tmp_path / "m.jsonl"
    rows = [{"prompt": f"p{i}"} for i in range(5)]
    write_jsonl(manifest, rows)
    out = tmp_path / "out"
    assert cli("run", str(manifest), "--emulator", "--out", str(out), cwd=tmp_path).returncode == 0
    rows[0] = {"prompt": "p0 edited"}  # changed: a new id
    del rows[4]  # removed
    rows.append({"prompt": "p5"})  # new
    write_jsonl(manifest, rows)
    again = cli("run", str(manifest), "--emulator", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 job(s) run: 2 completed" in again.stdout
    assert "3 already done" in again.stdout
    assert "2 job(s) no longer in the manifest" in again.stdout  # old p0 and p4
    assert len(list(out.glob("*.png"))) == 7  # earlier images are left alone


def test_a_second_run_on_the_same_folder_is_refused(tmp_path: Path):
    """While one run holds a folder, another on it stops at once (exit 2) and sends nothing."""
    manifest = tmp_path / "m.jsonl"
    write_jsonl(manifest, ({"prompt": f"p{i}"} for i in range(100)))
    first = start_cli(
        "run", str(manifest), "--emulator", "--out", "out", "--rpm", "30", "--quiet", cwd=tmp_path
    )
    ledger = tmp_path / "out" / "ledger.jsonl"
    while not ledger.exists() or b'"completed"' not in ledger.read_bytes():
        assert first.poll() is None
        time.sleep(0.05)
    second = cli("run", str(manifest), "--emulator", "--out", "out", cwd=tmp_path)
    first.send_signal(signal.SIGINT)
    first.communicate()
    assert second.returncode == 2
    assert "another batchgen run is using" in second.stderr
