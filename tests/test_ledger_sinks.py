"""Ledger appends and image output: durability, failure, atomicity, verification."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from batchgen.core.errors import LedgerError
from batchgen.core.events import Intent, Submitted
from batchgen.edges.ledger import LedgerWriter
from batchgen.edges.sinks import InvalidImage, MetadataWriter, store_atomic, verify_image


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (32, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, fmt)
    return buffer.getvalue()


async def test_concurrent_appends_are_group_committed(tmp_path: Path):
    """Many concurrent appends all land, whole, in fewer fsyncs than records."""
    path = tmp_path / "ledger.jsonl"
    async with LedgerWriter(path) as ledger:
        await asyncio.gather(*(ledger.append(Intent(f"j{i}", 0)) for i in range(500)))
        syncs = ledger.syncs
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["job"] for r in records) == sorted(f"j{i}" for i in range(500))
    assert all(r["v"] == 1 and r["event"] == "intent" and r["t"] > 0 for r in records)
    assert syncs < 500


async def test_append_returns_after_the_line_is_on_disk(tmp_path: Path):
    """When append returns, the record is already in the file (not only in a buffer)."""
    path = tmp_path / "ledger.jsonl"
    async with LedgerWriter(path) as ledger:
        await ledger.append(Submitted("a", "r1", "", ""))
        assert json.loads(path.read_text())["request_id"] == "r1"


async def test_write_failure_breaks_the_ledger(tmp_path: Path):
    """A failed write (here: a full device) raises LedgerError now and for every later append."""
    async with LedgerWriter(Path("/dev/full")) as ledger:  # Linux: every write fails, ENOSPC
        with pytest.raises(LedgerError, match="could not write"):
            await ledger.append(Intent("a", 0))
        with pytest.raises(LedgerError, match="unusable"):
            await ledger.append(Intent("b", 0))


async def test_append_after_close_is_refused(tmp_path: Path):
    """A closed ledger refuses appends instead of losing them."""
    ledger = LedgerWriter(tmp_path / "ledger.jsonl")
    async with ledger:
        pass
    with pytest.raises(LedgerError, match="closed"):
        await ledger.append(Intent("a", 0))


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_verify_image_accepts_each_format(fmt: str, name: str):
    """A complete image of the asked format verifies, with size and sha256."""
    info = verify_image(image_bytes(fmt), expected=name)
    assert (info.format, info.width, info.height) == (name, 32, 16)
    assert len(info.sha256) == 64


@pytest.mark.parametrize(
    ("data", "expected", "needle"),
    [
        (b"", None, "empty"),
        (b"<html>502</html>", None, "not a decodable image"),
        (image_bytes("PNG")[:-40], None, "not a decodable image"),  # truncated
        (image_bytes("JPEG"), "png", "expected png, got jpeg"),
    ],
)
def test_verify_image_rejects_bad_bytes(data: bytes, expected: str | None, needle: str):
    """Empty, non-image, truncated and wrong-format bodies are refused with a reason."""
    with pytest.raises(InvalidImage, match=needle):
        verify_image(data, expected)


def test_decompression_bombs_are_refused(monkeypatch: pytest.MonkeyPatch):
    """Pillow's bomb guard is on: an image past the pixel limit is refused, not decoded."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InvalidImage):
        verify_image(image_bytes(size=(20, 20)))


async def test_store_atomic_leaves_only_the_final_file(tmp_path: Path):
    """The final name holds the whole content; no temp file remains; nested folders are made."""
    target = tmp_path / "a" / "b" / "img.png"
    await store_atomic(target, b"first")
    await store_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["img.png"]


async def test_metadata_rows_are_whole_lines(tmp_path: Path):
    """Concurrent metadata appends never interleave."""
    async with MetadataWriter(tmp_path) as meta:
        await asyncio.gather(*(meta.append({"file_name": f"{i}.png", "x": "y" * 500})
                               for i in range(100)))  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 100
