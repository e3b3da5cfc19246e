"""Every script in examples/ runs as its docstring says (against the built-in emulator)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=cwd,
    )
    return out.stdout


def test_emulator_quickstart_writes_a_real_image(tmp_path: Path):
    """emulator_quickstart.py generates one decodable PNG through the emulator."""
    stdout = run("emulator_quickstart.py", str(tmp_path), cwd=tmp_path)
    images = list(tmp_path.glob("*.png"))
    assert len(images) == 1, stdout
    with Image.open(images[0]) as image:
        image.verify()
    assert "status: COMPLETED" in stdout


def test_client_one_job(tmp_path: Path):
    """client_one_job.py submits, waits and downloads one image with batchgen.Client."""
    target = tmp_path / "one.png"
    run("client_one_job.py", "a fox", str(target), cwd=tmp_path)
    with Image.open(target) as image:
        assert image.format == "PNG"


@pytest.mark.parametrize("manifest", ["quickstart.yaml"])
def test_run_manifest_example(tmp_path: Path, manifest: str):
    """run_manifest.py runs a jobs/ manifest through the Python API."""
    stdout = run(
        "run_manifest.py", str(ROOT / "jobs" / manifest), str(tmp_path / "o"), cwd=tmp_path
    )
    assert "8 completed, 0 failed" in stdout
    assert len(list((tmp_path / "o").glob("*.jpg"))) == 8
