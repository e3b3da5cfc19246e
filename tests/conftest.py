"""Shared helpers for manifest tests: write a manifest into tmp_path and load or scan it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from batchgen.manifest import Manifest, load_manifest


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text (or bytes) to a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load(write: Callable[..., Path]) -> Callable[..., Manifest]:
    """Write a manifest and load it."""

    def _load(name: str, content: str | bytes, **kwargs: object) -> Manifest:
        return load_manifest(write(name, content), **kwargs)  # type: ignore[arg-type]

    return _load
