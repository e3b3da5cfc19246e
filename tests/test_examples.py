"""The README's main command works as written (until `batchgen run` replaces it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def test_emulator_quickstart_writes_a_real_image(tmp_path: Path):
    """examples/emulator_quickstart.py generates one decodable PNG through the emulator."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "emulator_quickstart.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    images = list(tmp_path.glob("*.png"))
    assert len(images) == 1, out.stdout
    with Image.open(images[0]) as image:
        image.verify()
    assert "status: COMPLETED" in out.stdout
