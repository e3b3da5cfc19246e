"""The emulator's editing side over real HTTP: uploads, image inputs, derived and many outputs."""

from __future__ import annotations

import base64
import io
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageStat

from batchgen.cli.emulator import _edit_faults, _emulator_config, emulator
from batchgen.emulator import Emulator, parse_fault
from batchgen.emulator.edits import output_size
from batchgen.models.flux import FLUX_ASPECT_RATIOS
from batchgen.models.registry import MODELS

from .conftest import AUTH, StartEmulator, submit, wait_final


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


RED, BLUE = png((220, 20, 20)), png((20, 20, 220))


async def upload(
    http: aiohttp.ClientSession, emu: Emulator, *files: bytes, status: int = 200
) -> dict[str, Any]:
    body = {"data_urls": [data_url(f) for f in files]}
    async with http.post(f"{emu.base_url}/upload-asset", json=body, headers=AUTH) as resp:
        answer = dict(await resp.json())
        assert resp.status == status, answer
        return answer


async def finish(
    http: aiohttp.ClientSession, emu: Emulator, model: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Submit, wait for COMPLETED, return the result body."""
    accepted = await submit(http, emu, params, model=model)
    status, final = await wait_final(http, accepted["status_url"])
    assert status == 200, final
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        return dict(await resp.json())


async def fetch_image(http: aiohttp.ClientSession, url: str) -> Image.Image:
    async with http.get(url) as resp:
        assert resp.status == 200
        image = Image.open(io.BytesIO(await resp.read()))
        image.load()
        return image


async def test_upload_answers_urls_in_order_and_serves_the_bytes_back(emu: Emulator, http):
    """Several files in one call: one URL each, in request order, on the emulator's own origin."""
    answer = await upload(http, emu, RED, BLUE)
    urls = answer["file_urls"]
    assert len(urls) == 2
    assert all(u.startswith(f"{emu.base_url}/assets/") for u in urls)
    for url, sent in zip(urls, (RED, BLUE), strict=True):
        async with http.get(url) as resp:  # public, like a CDN: no key
            assert resp.status == 200
            assert resp.content_type == "image/png"
            assert await resp.read() == sent


async def test_uploads_are_counted_by_content(emu: Emulator, http):
    """Uploading the same content again is a duplicate in the server's stats."""
    await upload(http, emu, RED, BLUE)
    await upload(http, emu, RED)
    stats = emu.stats()
    assert (stats["upload_calls"], stats["uploads"], stats["uploads_distinct"]) == (2, 3, 2)
    assert stats["uploads_duplicate"] == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"files": []}, "data_urls"),
        ({"data_urls": []}, "data_urls"),
        ({"data_urls": ["https://x/a.png"]}, "data_urls[0] is not a base64 data URL"),
        ({"data_urls": [data_url(RED), "data:image/png;base64,@@@"]}, "data_urls[1] has invalid"),
        ({"data_urls": [7]}, "data_urls[0] must be a string"),
    ],
)
async def test_bad_upload_bodies_are_refused_and_store_nothing(emu: Emulator, http, body, words):
    async with http.post(f"{emu.base_url}/upload-asset", json=body, headers=AUTH) as resp:
        assert resp.status == 400
        assert words in (await resp.json())["error"]
    assert emu.stats()["uploads"] == 0


async def test_upload_needs_the_api_key(emu: Emulator, http):
    async with http.post(f"{emu.base_url}/upload-asset", json={"data_urls": []}) as resp:
        assert resp.status == 401


async def test_edit_output_derives_from_the_input(emu: Emulator, http):
    """An edit of a red and of a blue input: each output keeps its input's colour and size."""
    red_url, blue_url = (await upload(http, emu, RED, BLUE))["file_urls"]
    edits = []
    for url in (red_url, blue_url):
        params = {"prompt": "make it night", "image": url, "seed": 5}
        edits.append(
            await fetch_image(http, (await finish(http, emu, "qwen-image-edit", params))["output"])
        )
    red_out, blue_out = (ImageStat.Stat(im.convert("RGB")).mean for im in edits)
    assert red_out[0] > red_out[2] + 40  # still red, tinted
    assert blue_out[2] > blue_out[0] + 40
    assert edits[0].size == (64, 48)  # match the input (small inputs are not upscaled)
    plain = await finish(http, emu, "qwen-image", {"prompt": "make it night", "seed": 5})
    text_only = await fetch_image(http, plain["output"])
    assert text_only.size != edits[0].size or text_only.tobytes() != edits[0].tobytes()


async def test_same_edit_twice_gives_the_same_bytes(emu: Emulator, http):
    """Deterministic: the same input, prompt and seed make byte-identical outputs."""
    (url,) = (await upload(http, emu, RED))["file_urls"]
    outs = []
    for _ in range(2):
        body = await finish(
            http, emu, "flux-kontext-pro", {"prompt": "p", "input_image": url, "seed": 1}
        )
        async with http.get(body["output"]) as resp:
            outs.append(await resp.read())
    assert outs[0] == outs[1]
    other = await finish(
        http, emu, "flux-kontext-pro", {"prompt": "q", "input_image": url, "seed": 1}
    )
    async with http.get(other["output"]) as resp:
        assert await resp.read() != outs[0]


async def test_output_format_and_ratio_follow_the_models_table(emu: Emulator, http):
    """flux's output_format jpg gives JPEG; a fixed aspect ratio draws at the table's size / 8."""
    (url,) = (await upload(http, emu, RED))["file_urls"]
    params = {"prompt": "p", "input_image": url, "output_format": "jpg", "aspect_ratio": "16:9"}
    body = await finish(http, emu, "flux-kontext-pro", params)
    image = await fetch_image(http, body["output"])
    assert image.format == "JPEG"
    assert body["images"][0]["content_type"] == "image/jpeg"
    width, height = FLUX_ASPECT_RATIOS["16:9"]
    assert width / height == pytest.approx(16 / 9, rel=0.02)
    assert image.size == (width // 8, height // 8)


async def test_seedream_returns_as_many_images_as_asked(emu: Emulator, http):
    """max_images 3: `output` is a list of 3 URLs, `images[]` has 3 entries, all distinct images."""
    urls = (await upload(http, emu, RED, BLUE))["file_urls"]
    params = {"prompt": "a shoot", "image_input": urls, "max_images": 3}
    body = await finish(http, emu, "seedream-4.5", params)
    assert isinstance(body["output"], list)
    assert len(body["output"]) == 3
    assert [i["url"] for i in body["images"]] == body["output"]
    pictures = [(await fetch_image(http, u)).tobytes() for u in body["output"]]
    assert len(set(pictures)) == 3
    assert emu.stats()["images_made"] == 3


async def test_one_image_model_keeps_a_string_output(emu: Emulator, http):
    body = await finish(http, emu, "seedream-4.5", {"prompt": "text only"})
    assert isinstance(body["output"], str)
    assert len(body["images"]) == 1


async def test_one_image_fault_answers_one_where_several_were_asked(
    start_emulator: StartEmulator, http
):
    emu = await start_emulator(faults=(parse_fault("submit:one-image=1x1"),))
    params = {"prompt": "a shoot", "max_images": 3}
    first = await finish(http, emu, "seedream-4.5", params)
    assert len(first["output"]) == 1  # still a list: the job asked for several
    assert len(first["images"]) == 1
    second = await finish(http, emu, "seedream-4.5", params)
    assert len(second["output"]) == 3
    assert emu.stats()["faults"] == {"submit:one-image": 1}


async def test_short_upload_fault_stores_all_but_answers_fewer(start_emulator: StartEmulator, http):
    emu = await start_emulator(faults=(parse_fault("upload:short=1x1"),))
    answer = await upload(http, emu, RED, BLUE)
    assert len(answer["file_urls"]) == 1
    assert emu.stats()["uploads"] == 2
    assert len((await upload(http, emu, RED, BLUE))["file_urls"]) == 2


async def test_lost_upload_answer_still_stores_the_files(start_emulator: StartEmulator, http):
    """accepted-reset on the upload route: the files are stored, the client sees a reset."""
    emu = await start_emulator(faults=(parse_fault("upload:accepted-reset=1x1"),))
    with pytest.raises(aiohttp.ClientError):
        await upload(http, emu, RED)
    assert emu.stats()["uploads"] == 1
    await upload(http, emu, RED)  # the client's retry: a duplicate the stats show
    assert emu.stats()["uploads_duplicate"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://images.segmind.com/assets/abc.png",  # not ours: unreachable from here
        "ftp://127.0.0.1/a.png",
        "{base}/assets/00000000000000000000000000000000.png",  # our origin, no such asset
        "{base}/media/abc.png",
    ],
)
async def test_inputs_other_than_own_assets_are_refused(emu: Emulator, http, url):
    params = {"prompt": "p", "image": url.format(base=emu.base_url)}
    async with http.post(f"{emu.base_url}/v2/qwen-image-edit", json=params, headers=AUTH) as resp:
        assert resp.status == 400
        assert "unreachable" in (await resp.json())["error"]
    stats = emu.stats()
    assert (stats["inputs_refused"], stats["submits_accepted"]) == (1, 0)


async def test_an_asset_url_on_another_host_name_is_refused(emu: Emulator, http):
    """The check is by origin: the same asset under another host name is not ours."""
    (url,) = (await upload(http, emu, RED))["file_urls"]
    params = {"prompt": "p", "image": url.replace("127.0.0.1", "localhost")}
    async with http.post(f"{emu.base_url}/v2/qwen-image-edit", json=params, headers=AUTH) as resp:
        assert resp.status == 400


async def test_an_upload_that_is_not_an_image_fails_the_job(emu: Emulator, http):
    """Stored as image/png, but not decodable: the job FAILS (not billed) with a clear error."""
    body = {"data_urls": [data_url(b"not really a png")]}
    async with http.post(f"{emu.base_url}/upload-asset", json=body, headers=AUTH) as resp:
        (url,) = (await resp.json())["file_urls"]
    accepted = await submit(http, emu, {"prompt": "p", "image": url}, model="qwen-image-edit")
    status, final = await wait_final(http, accepted["status_url"])
    assert status == 422
    assert "could not be decoded" in final["error"]


MODEL_CASES = [
    ("qwen-image-edit", {"prompt": "p", "image": "{a}"}, {"prompt": "p"}, "image"),
    (
        "qwen-image-edit-fast",
        {"prompt": "p", "image": "{a}", "steps": 8},
        {"prompt": "p", "image": "{a}", "steps": 0},
        "steps",
    ),
    (
        "qwen-image-edit-plus",
        {"prompt": "p", "image": "{a}", "image_2": "{b}", "image_3": None},
        {"prompt": "p", "image": ["{a}"]},
        "image",
    ),
    (
        "flux-kontext-pro",
        {"prompt": "p", "input_image": "{a}"},
        {"prompt": "p", "safety_tolerance": 9},
        "safety_tolerance",
    ),
    (
        "flux-kontext-dev",
        {"prompt": "p", "input_image": "{a}", "guidance": 2.5},
        {"prompt": "p"},
        "input_image",
    ),
    (
        "multi-image-kontext-pro",
        {"prompt": "p", "input_image_1": "{a}", "input_image_2": "{b}"},
        {"prompt": "p", "input_image_1": "{a}"},
        "input_image_2",
    ),
    (
        "seedream-4.5",
        {"prompt": "p", "image_input": ["{a}", "{b}"], "size": "4K"},
        {"prompt": "p", "image_input": ["{a}"] * 15},
        "image_input",
    ),
    (
        "nano-banana",
        {"prompt": "p", "image_urls": ["{a}"], "aspect_ratio": "21:9"},
        {"prompt": "p", "aspect_ratio": "7:1"},
        "aspect_ratio",
    ),
]


def _fill(params: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    def one(v: Any) -> Any:
        if isinstance(v, list):
            return [one(x) for x in v]
        return v.format(a=a, b=b) if isinstance(v, str) else v

    return {k: one(v) for k, v in params.items()}


@pytest.mark.parametrize(
    ("model", "good", "bad", "field"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES]
)
async def test_each_edit_model_is_served_and_validated(
    emu: Emulator, http, model, good, bad, field
):
    """Each model accepts a request its table allows (and completes), and refuses one it forbids."""
    a, b = (await upload(http, emu, RED, BLUE))["file_urls"]
    body = await finish(http, emu, model, _fill(good, a, b))
    outputs = body["output"] if isinstance(body["output"], list) else [body["output"]]
    for url in outputs:
        await fetch_image(http, url)
    async with http.post(f"{emu.base_url}/v2/{model}", json=_fill(bad, a, b), headers=AUTH) as resp:
        assert resp.status == 400
        assert field in (await resp.json())["error"]


async def test_listed_models_only_answers_404_for_edit_models(start_emulator: StartEmulator, http):
    emu = await start_emulator(known_models=False)
    async with http.post(
        f"{emu.base_url}/v2/seedream-4.5", json={"prompt": "p"}, headers=AUTH
    ) as resp:
        assert resp.status == 404


def test_cli_shorthand_flags_become_fault_rules():
    opts: dict[str, Any] = {"lose_upload_answers": 2, "short_uploads": 0, "one_image": 1}
    rules = {(r.route, r.kind, r.limit) for r in _edit_faults(opts)}
    assert rules == {("upload", "accepted-reset", 2), ("submit", "one-image", 1)}
    with pytest.raises(ValueError, match="--short-uploads must be >= 0"):
        _edit_faults({"short_uploads": -1})


def test_fault_kinds_are_limited_to_their_routes():
    with pytest.raises(ValueError, match="only applies to the upload routes"):
        parse_fault("submit:short=1")
    with pytest.raises(ValueError, match="only applies to the submit and sync routes"):
        parse_fault("upload:one-image=1")


async def test_each_model_is_billed_at_its_tables_price(start_emulator: StartEmulator, http):
    """metrics.cost: the model's price (seedream $0.04), 0.12 where the page gives none, or the
    --cost-per-image override for every model."""
    emu = await start_emulator()
    (url,) = (await upload(http, emu, RED))["file_urls"]
    seedream = await finish(http, emu, "seedream-4.5", {"prompt": "p"})
    edit = await finish(http, emu, "qwen-image-edit", {"prompt": "p", "image": url})
    assert (seedream["metrics"]["cost"], edit["metrics"]["cost"]) == (0.04, 0.12)
    assert emu.stats()["credits_spent"] == pytest.approx(0.16)
    flat = await start_emulator(cost_per_image=0.5)
    assert (await finish(http, flat, "seedream-4.5", {"prompt": "p"}))["metrics"]["cost"] == 0.5


async def test_v1_sync_edit_returns_the_derived_image_bytes(emu: Emulator, http):
    """POST /v1/{edit model} with an uploaded input answers the first image's bytes."""
    (url,) = (await upload(http, emu, BLUE))["file_urls"]
    params = {"prompt": "p", "image": url}
    async with http.post(f"{emu.base_url}/v1/qwen-image-edit", json=params, headers=AUTH) as resp:
        assert resp.status == 200
        image = Image.open(io.BytesIO(await resp.read()))
    assert image.size == (64, 48)
    mean = ImageStat.Stat(image.convert("RGB")).mean
    assert mean[2] > mean[0] + 40


@pytest.mark.parametrize(
    ("model", "params", "input_size", "full", "expected"),
    [
        (
            "seedream-4.5",
            {"size": "custom", "width": 1024, "height": 3072},
            None,
            True,
            (1024, 3072),
        ),
        ("seedream-4.5", {"aspect_ratio": "1:1", "size": "4K"}, None, True, (4096, 4096)),
        ("seedream-4.5", {}, (640, 480), True, (640, 480)),  # match_input_image
        ("seedream-4.5", {}, (2000, 1000), False, (256, 128)),  # shrunk for tests
        ("flux-kontext-pro", {"aspect_ratio": "1:1"}, (640, 480), False, (128, 128)),
        ("qwen-image", {}, None, False, (1664 // 8, 928 // 8)),  # qwen's default 16:9, as before
        ("nano-banana", {}, (640, 480), True, (1024, 1024)),  # nano's default is 1:1, not match
    ],
)
def test_output_size_follows_the_table(model, params, input_size, full, expected):
    assert output_size(MODELS[model], params, input_size, full) == expected


async def test_model_latency_scale_times_each_model_by_its_table(
    start_emulator: StartEmulator, http
):
    """Each model's planned processing time is its page's latency times the scale (jitter in
    proportion), so a client must learn per-model timing; models off the table use the default."""
    emu = await start_emulator(model_latency_scale=0.001, models=("qwen-image", "upscaler"))
    (url,) = (await upload(http, emu, RED))["file_urls"]
    planned = {}
    for model in ("seedream-4.5", "flux-kontext-dev", "nano-banana", "upscaler"):
        params = {"prompt": "p", **({"input_image": url} if model == "flux-kontext-dev" else {})}
        accepted = await submit(http, emu, params, model=model)
        record = emu.state.store.get(accepted["request_id"])
        assert record is not None
        planned[model] = record.duration
    for model, seconds in planned.items():
        mean = MODELS[model].typical_seconds * 0.001 if model in MODELS else 0.030
        assert mean * 0.6 <= seconds <= mean * 1.4, (model, seconds)
    # 10.81 s vs 32.23 s on the pages: apart whatever the jitter (+/- 40% here) draws.
    assert planned["flux-kontext-dev"] < planned["seedream-4.5"]


def test_cli_flags_parse_into_the_config():
    """The new `batchgen emulator` flags, parsed by click, land in the config."""
    args = ["--one-image", "2", "--short-uploads", "1", "--listed-models-only"]
    args += ["--model-latency-scale", "0.5", "--fault", "upload:503=0.5"]
    ctx = emulator.make_context("emulator", args)
    config = _emulator_config(dict(ctx.params))
    rules = {(r.route, r.kind, r.limit) for r in config.faults}
    assert rules == {("submit", "one-image", 2), ("upload", "short", 1), ("upload", "503", None)}
    assert config.known_models is False
    assert config.model_latency_scale == 0.5
    assert config.cost_per_image is None  # each model's own price


async def test_count_uploads_puts_uploads_under_the_rate_limit(start_emulator: StartEmulator, http):
    """With count_uploads, uploads and submits share the key's window; without, uploads are free."""
    limited = await start_emulator(rpm=2, count_uploads=True)
    await upload(http, limited, RED)
    await upload(http, limited, RED)
    await upload(http, limited, RED, status=429)
    assert limited.stats()["rate_limited_by_route"] == {"upload": 1}
    free = await start_emulator(rpm=1)
    for _ in range(3):
        await upload(http, free, RED)
    assert free.stats()["rate_limited"] == 0


async def test_an_input_format_the_model_does_not_take_is_refused(emu: Emulator, http):
    """flux-kontext-dev takes jpeg, png, gif, webp (its page): a BMP is a 400 there, while
    flux-kontext-pro, whose page lists no formats, takes it."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buffer, "BMP")
    (url,) = (await upload(http, emu, buffer.getvalue()))["file_urls"]
    params = {"prompt": "p", "input_image": url}
    async with http.post(f"{emu.base_url}/v2/flux-kontext-dev", json=params, headers=AUTH) as resp:
        assert resp.status == 400
        assert (
            "is a bmp image; flux-kontext-dev takes jpeg, png, gif, webp"
            in (await resp.json())["error"]
        )
    await finish(http, emu, "flux-kontext-pro", params)


async def test_an_oversized_input_fails_the_job_before_decoding(emu: Emulator, http):
    """An input over MAX_INPUT_PIXELS (a 10,000 x 10,000 sheet, small as a file) FAILS the job."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")
    assert buffer.tell() < 1_000_000
    (url,) = (await upload(http, emu, buffer.getvalue()))["file_urls"]
    accepted = await submit(http, emu, {"prompt": "p", "image": url}, model="qwen-image-edit")
    status, final = await wait_final(http, accepted["status_url"])
    assert status == 422
    assert "10000x10000: too large" in final["error"]
    assert emu.stats()["remaining_credits"] == pytest.approx(10_000.0)  # not billed
