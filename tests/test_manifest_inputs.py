"""Image inputs in manifests (issue 18, deliverables 2 and 4): paths, URLs and globs, checked
offline before anything is sent, and jobs identified by their inputs' content."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from batchgen.core.errors import ManifestError
from batchgen.core.jobs import Job
from batchgen.manifest.loader import load_manifest
from tests.helpers import write_jsonl


def png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def huge_png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width` x `height` (the file is tiny: nothing is decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
    data += struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    path.write_bytes(data)
    return path


def jobs_of(manifest: Path) -> list[Job]:
    return list(load_manifest(manifest).jobs())


def problems_of(manifest: Path) -> list[str]:
    scan = load_manifest(manifest).scan()
    assert not scan.ok
    return [str(p) for p in scan.problems]


def edit_yaml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "edit.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_local_path_is_read_relative_to_the_manifest(tmp_path: Path) -> None:
    png(tmp_path / "in" / "a.png", (200, 10, 10))
    manifest = edit_yaml(
        tmp_path, "model: qwen-image-edit\njobs:\n  - {prompt: make it blue, image: in/a.png}\n"
    )
    (job,) = jobs_of(manifest)
    (ref,) = job.inputs
    assert (ref.slot, ref.index, ref.name, ref.mime) == ("image", None, "a.png", "image/png")
    assert len(ref.sha256) == 64
    assert ref.size == (tmp_path / "in" / "a.png").stat().st_size
    assert job.params["image"] == "in/a.png"  # the upload stage puts the URL in its place


def test_an_http_url_is_sent_as_written(tmp_path: Path) -> None:
    manifest = edit_yaml(
        tmp_path,
        "model: qwen-image-edit\njobs:\n  - {prompt: p, image: 'https://example.com/a.png'}\n",
    )
    (job,) = jobs_of(manifest)
    assert job.inputs == ()
    assert job.params["image"] == "https://example.com/a.png"


def test_a_sweep_glob_makes_one_job_per_file_sorted(tmp_path: Path) -> None:
    for name, color in (("c.png", (0, 0, 255)), ("a.png", (255, 0, 0)), ("b.png", (0, 255, 0))):
        png(tmp_path / "inputs" / name, color)
    (tmp_path / "inputs" / "notes.txt").write_text("not matched")
    manifest = edit_yaml(
        tmp_path,
        "model: qwen-image-edit\ndefaults: {prompt: relight}\n"
        "sweep:\n  image: {glob: 'inputs/*.png'}\n  guidance: [3, 5]\n",
    )
    jobs = jobs_of(manifest)
    assert [(j.inputs[0].name, j.params["guidance"]) for j in jobs] == [
        ("a.png", 3), ("a.png", 5), ("b.png", 3), ("b.png", 5), ("c.png", 3), ("c.png", 5),
    ]  # fmt: skip
    assert len({j.id for j in jobs}) == 6


def test_a_jsonl_row_names_a_path_per_slot(tmp_path: Path) -> None:
    png(tmp_path / "in" / "a.png", (1, 2, 3))
    png(tmp_path / "in" / "b.png", (4, 5, 6))
    rows = [
        {"model": "qwen-image-edit-plus", "prompt": "merge", "image": "in/a.png",
         "image_2": "in/b.png"},
        {"model": "seedream-4.5", "prompt": "collage", "image_input": ["in/a.png", "in/b.png"]},
    ]  # fmt: skip
    jobs = jobs_of(write_jsonl(tmp_path / "rows.jsonl", rows))
    assert [(r.slot, r.index, r.name) for r in jobs[0].inputs] == [
        ("image", None, "a.png"), ("image_2", None, "b.png"),
    ]  # fmt: skip
    assert [(r.slot, r.index, r.name) for r in jobs[1].inputs] == [
        ("image_input", 0, "a.png"), ("image_input", 1, "b.png"),
    ]  # fmt: skip


def test_ids_follow_content_not_path(tmp_path: Path) -> None:
    png(tmp_path / "in" / "a.png", (9, 9, 9))
    png(tmp_path / "in" / "b.png", (8, 8, 8))
    body = (
        "model: qwen-image-edit\ndefaults: {prompt: p}\n"
        "sweep:\n  image: {glob: 'in/*.png'}\n  prompt: [one, two]\n"
    )
    manifest = edit_yaml(tmp_path, body)
    before = {(j.inputs[0].sha256, j.params["prompt"]): j.id for j in jobs_of(manifest)}
    (tmp_path / "in" / "a.png").rename(tmp_path / "in" / "renamed.png")
    after = {(j.inputs[0].sha256, j.params["prompt"]): j.id for j in jobs_of(manifest)}
    assert after == before  # renaming reruns nothing
    png(tmp_path / "in" / "b.png", (7, 7, 7))  # new pixels
    edited = {j.inputs[0].name + j.params["prompt"]: j.id for j in jobs_of(manifest)}
    kept = set(edited.values()) & set(before.values())
    assert len(kept) == 2
    assert edited["renamed.pngone"] in kept
    assert edited["renamed.pngtwo"] in kept
    assert edited["b.pngone"] not in before.values()


def test_text_only_jobs_have_no_inputs_and_their_usual_ids(tmp_path: Path) -> None:
    manifest = edit_yaml(tmp_path, "jobs:\n  - {prompt: a cat, seed: 1}\n")
    (job,) = jobs_of(manifest)
    assert job.inputs == ()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"hello, not an image"), "is not an image"),
        (lambda p: p.write_bytes(_truncated_png()), "truncated or corrupt"),
        (lambda p: huge_png_header(p, 10_000, 10_000), "10000x10000 pixels, over the limit"),
        (lambda p: p.mkdir(), "is not a file"),
    ],
    ids=["missing", "empty", "not-an-image", "truncated", "10k-by-10k", "folder"],
)
def test_bad_input_files_are_refused_with_file_and_line(tmp_path: Path, make, expected) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path / "x.png")
    manifest = edit_yaml(
        tmp_path,
        "model: qwen-image-edit\njobs:\n  - {prompt: p, image: 'http://h/a.png'}\n"
        "  - {prompt: q, image: x.png}\n",
    )
    found = problems_of(manifest)
    assert len(found) == 1
    assert found[0].startswith(f"{manifest}:4: job jobs[1]: image = 'x.png': ")
    assert expected in found[0]


def _truncated_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()[:-200]


def test_a_format_the_model_does_not_take(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "x.bmp", format="BMP")
    manifest = edit_yaml(
        tmp_path, "model: flux-kontext-dev\njobs:\n  - {prompt: p, input_image: x.bmp}\n"
    )
    (found,) = problems_of(manifest)
    assert f"{manifest}:3" in found
    assert "is a BMP image; this model takes jpeg, png, gif, webp" in found


def test_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    manifest = edit_yaml(
        tmp_path,
        "model: qwen-image-edit\ndefaults: {prompt: p}\nsweep:\n  image: {glob: 'in/*.png'}\n",
    )
    found = problems_of(manifest)[0]  # (then: the jobs lack their required image)
    assert found.startswith(f"{manifest}:4: sweep.image = 'in/*.png': matches no file")


def test_an_input_slot_on_a_text_only_model(tmp_path: Path) -> None:
    png(tmp_path / "a.png", (1, 1, 1))
    manifest = edit_yaml(tmp_path, "model: qwen-image\njobs:\n  - {prompt: p, image: a.png}\n")
    (found,) = problems_of(manifest)
    assert f"{manifest}:3" in found
    assert "image = 'a.png': is not a parameter of qwen-image" in found


def test_a_list_slot_with_too_many_images(tmp_path: Path) -> None:
    png(tmp_path / "a.png", (1, 1, 1))
    rows = [{"model": "seedream-4.5", "prompt": "p", "image_input": ["a.png"] * 15}]
    manifest = write_jsonl(tmp_path / "rows.jsonl", rows)
    found = problems_of(manifest)
    assert any(f"{manifest}:1" in f and "0 to 14 image" in f and "got 15" in f for f in found)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://host/a.png", "data:image/png;base64,AA"]
)
def test_a_url_with_a_non_http_scheme(tmp_path: Path, url: str) -> None:
    manifest = write_jsonl(
        tmp_path / "rows.jsonl", [{"model": "qwen-image-edit", "prompt": "p", "image": url}]
    )
    (found,) = problems_of(manifest)
    assert found.startswith(f"{manifest}:1: job row 1: image = ")
    assert "URL; an image input is an http(s) URL or a local file path" in found


def test_each_distinct_file_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchgen.manifest import inputs

    png(tmp_path / "a.png", (3, 3, 3))
    calls: list[int] = []
    real = inputs._decoded_format
    monkeypatch.setattr(inputs, "_decoded_format", lambda data: calls.append(1) or real(data))
    manifest = edit_yaml(
        tmp_path,
        "model: qwen-image-edit\ndefaults: {image: a.png}\nsweep:\n  prompt: [a, b, c, d]\n",
    )
    assert len(jobs_of(manifest)) == 4
    assert len(calls) == 1


# -- input datasets ------------------------------------------------------------------------------


def test_an_imagefolder_with_metadata_columns_becomes_jobs(tmp_path: Path) -> None:
    png(tmp_path / "photos" / "b.png", (0, 9, 0))
    png(tmp_path / "photos" / "a.png", (9, 0, 0))
    write_jsonl(tmp_path / "photos" / "metadata.jsonl", [
        {"file_name": "a.png", "caption": "a red mug"},
        {"file_name": "b.png", "caption": "a green lamp", "guidance": 6},
    ])  # fmt: skip
    manifest = edit_yaml(
        tmp_path,
        "model: qwen-image-edit\ninputs: {imagefolder: photos}\n"
        "defaults: {prompt: 'studio light on {caption}'}\nsweep:\n  seed: [1, 2]\n",
    )
    jobs = jobs_of(manifest)
    assert [(j.inputs[0].name, j.params["prompt"], j.params["seed"]) for j in jobs] == [
        ("a.png", "studio light on a red mug", 1), ("a.png", "studio light on a red mug", 2),
        ("b.png", "studio light on a green lamp", 1), ("b.png", "studio light on a green lamp", 2),
    ]  # fmt: skip
    assert jobs[2].params["guidance"] == 6  # a column that is a parameter is sent
    assert "caption" not in jobs[0].params  # the others are fields, not sent
    assert jobs[0].inputs[0].columns == {"caption": "a red mug"}


def test_a_jsonl_and_a_parquet_table_with_an_image_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    png(tmp_path / "data" / "img" / "x.png", (5, 5, 5))
    rows = [{"path": "img/x.png", "prompt": "make it gold", "sku": "X-1"}]
    write_jsonl(tmp_path / "data" / "items.jsonl", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data" / "items.parquet")
    for name in ("items.jsonl", "items.parquet"):
        manifest = edit_yaml(
            tmp_path,
            f"model: qwen-image-edit\ninputs: {{file: data/{name}, image_column: path}}\n",
        )
        (job,) = jobs_of(manifest)
        assert job.params["prompt"] == "make it gold"
        assert job.inputs[0].name == "x.png"
        assert job.inputs[0].columns == {"prompt": "make it gold", "sku": "X-1"}  # all of them


def test_dataset_problems_name_their_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "items.jsonl", [
        {"path": "missing.png", "prompt": "p"}, {"prompt": "no path"},
    ])  # fmt: skip
    manifest = edit_yaml(
        tmp_path, "model: qwen-image-edit\ninputs: {file: data/items.jsonl, image_column: path}\n"
    )
    found = problems_of(manifest)
    items = tmp_path / "data" / "items.jsonl"
    assert any(f.startswith(f"{items}:2: path: must be an image path") for f in found)
    assert any(f.startswith(f"{items}:1: job missing.png: image = ") and "does not exist" in f
               for f in found)  # fmt: skip
    text_only = edit_yaml(tmp_path, "model: qwen-image\ninputs: {imagefolder: data}\n")
    with pytest.raises(ManifestError, match="qwen-image takes no image input"):
        load_manifest(text_only)


def test_model_as_a_sweep_axis_validates_each_job_by_its_own_model(tmp_path: Path) -> None:
    manifest = edit_yaml(
        tmp_path,
        "defaults: {prompt: a lighthouse}\n"
        "sweep:\n  model: [qwen-image, seedream-4.5]\n  aspect_ratio: ['1:1', '16:9']\n",
    )
    jobs = jobs_of(manifest)
    assert [(j.model, j.params["aspect_ratio"]) for j in jobs] == [
        ("qwen-image", "1:1"), ("qwen-image", "16:9"),
        ("seedream-4.5", "1:1"), ("seedream-4.5", "16:9"),
    ]  # fmt: skip
    assert all("model" not in j.params for j in jobs)
    bad = edit_yaml(
        tmp_path,
        "defaults: {prompt: p, guidance: 30}\nsweep:\n  model: [qwen-image, seedream-4.5]\n",
    )
    found = problems_of(bad)
    assert any("guidance = 30: must be a number from 1 to 20" in f for f in found)  # qwen's range
    assert any("guidance = 30: is not a parameter of seedream-4.5" in f for f in found)
