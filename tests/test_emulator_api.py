"""The emulator's wire behaviour, route by route, over real HTTP."""

from __future__ import annotations

import base64
import io
import re

import aiohttp
import pytest
from PIL import Image

from batchgen.emulator import Emulator
from batchgen.models.registry import QWEN_ASPECT_RATIOS

from .conftest import AUTH, StartEmulator, generate, submit, wait_final


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- auth and request checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing Authorization or x-api-key in header"),
        ({"x-api-key": "SG_wrong"}, "Unauthorized. API key is invalid or may have expired"),
    ],
)
async def test_auth_is_required_with_spec_bodies(emu: Emulator, http, headers, message):
    """Missing and wrong keys get 401 with the spec's messages, on submit and on polls."""
    for method, path in [("POST", "/v2/qwen-image"), ("GET", "/v2/requests/abc/status")]:
        async with http.request(
            method, emu.base_url + path, json={"prompt": "x"}, headers=headers
        ) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"].startswith(message)
    assert emu.stats()["submits_accepted"] == 0


async def test_custom_keys_replace_the_default(start_emulator: StartEmulator, http):
    """Configured keys are the only ones accepted."""
    emu = await start_emulator(keys=("SG_aaaa", "SG_bbbb"))
    for key, status in [("SG_bbbb", 200), ("emulator-key", 401)]:
        async with http.post(
            f"{emu.base_url}/v2/qwen-image", json={"prompt": "x"}, headers={"x-api-key": key}
        ) as resp:
            assert resp.status == status


@pytest.mark.parametrize(
    ("knobs", "model", "status", "text"),
    [
        ({}, "no-such-model", 404, "Model no-such-model not found"),
        ({"retired_models": ("old-model",)}, "old-model", 410, "retired"),
        (
            {"models": ("qwen-image", "pro-model"), "forbidden_models": ("pro-model",)},
            "pro-model",
            403,
            "does not have access",
        ),
    ],
)
async def test_model_errors(start_emulator: StartEmulator, http, knobs, model, status, text):
    """Unknown models 404, retired ones 410, models the key may not use 403."""
    emu = await start_emulator(**knobs)
    async with http.post(f"{emu.base_url}/v2/{model}", json={"prompt": "x"}, headers=AUTH) as resp:
        assert resp.status == status
        assert text in (await resp.json())["error"]


async def test_non_json_content_type_is_406(emu: Emulator, http):
    """A form-encoded body is refused with 406, as the spec says."""
    async with http.post(
        f"{emu.base_url}/v2/qwen-image", data={"prompt": "x"}, headers=AUTH
    ) as resp:
        assert resp.status == 406
        assert "Content-Type" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
async def test_malformed_bodies_are_400(emu: Emulator, http, body, needle):
    """Bodies that are not a JSON object are 400."""
    headers = {**AUTH, "Content-Type": "application/json"}
    async with http.post(f"{emu.base_url}/v2/qwen-image", data=body, headers=headers) as resp:
        assert resp.status == 400
        assert needle in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("params", "field", "allowed"),
    [
        ({}, "prompt", "required"),
        ({"prompt": ""}, "prompt", "must not be empty"),
        ({"prompt": "x", "steps": 0}, "steps", "from 1 to 50"),
        ({"prompt": "x", "steps": True}, "steps", "an integer from 1 to 50"),
        ({"prompt": "x", "guidance": 25}, "guidance", "from 1 to 20"),
        ({"prompt": "x", "aspect_ratio": "5:4"}, "aspect_ratio", "'16:9'"),
        ({"prompt": "x", "image_format": "gif"}, "image_format", "'webp'"),
        ({"prompt": "x", "quality": 5}, "quality", "from 10 to 100"),
        ({"prompt": "x", "seed": -2}, "seed", "or -1"),
        ({"prompt": "x", "base64": "yes"}, "base64", "true or false"),
        ({"prompt": "x", "guidanse": 3}, "guidanse", "did you mean 'guidance'"),
    ],
)
async def test_qwen_validation_names_field_and_allowed_values(
    emu: Emulator, http, params, field, allowed
):
    """Invalid qwen-image parameters get 400 naming the field and what is allowed."""
    async with http.post(f"{emu.base_url}/v2/qwen-image", json=params, headers=AUTH) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert field in error
    assert allowed in error
    assert emu.stats()["submits_accepted"] == 0


async def test_extra_models_pass_parameters_through(start_emulator: StartEmulator, http):
    """A model outside the table accepts any parameters (the runner must pass them through)."""
    emu = await start_emulator(models=("qwen-image", "flux-dev"))
    accepted = await submit(http, emu, {"prompt": "x", "lora_scale": 0.7}, model="flux-dev")
    status, _ = await wait_final(http, accepted["status_url"])
    assert status == 200


async def test_accept_invalid_fails_later_with_422(start_emulator: StartEmulator, http):
    """With accept_invalid, a bad body is accepted, then FAILS with the validation text."""
    emu = await start_emulator(accept_invalid=True)
    accepted = await submit(http, emu, {"prompt": "x", "steps": 99})
    status, body = await wait_final(http, accepted["status_url"])
    assert (status, body["status"]) == (422, "FAILED")
    assert "steps" in body["error"]
    assert "from 1 to 50" in body["error"]
    assert emu.stats()["remaining_credits"] == pytest.approx(10_000.0)  # not billed


# -- queue, bodies, ids -------------------------------------------------------------------------


async def test_submit_and_poll_bodies_follow_the_spec(emu: Emulator, http):
    """Submit, status and result bodies carry the documented keys and absolute URLs."""
    accepted = await submit(http, emu, {"prompt": "a fox", "seed": 5})
    request_id = accepted["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert accepted["status"] == "QUEUED"
    assert accepted["status_url"] == f"{emu.base_url}/v2/requests/{request_id}/status"
    assert accepted["response_url"] == f"{emu.base_url}/v2/requests/{request_id}"
    assert accepted["poll_url"] == accepted["status_url"]
    status, done = await wait_final(http, accepted["status_url"])
    assert status == 200
    assert done == {
        "status": "COMPLETED",
        "request_id": request_id,
        "metrics": {"inference_time": done["metrics"]["inference_time"]},
    }
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        result = await resp.json()
    assert result["status"] == "COMPLETED"
    assert result["error"] is None
    assert result["seed"] == 5
    assert result["output"] == result["images"][0]["url"]
    assert result["images"][0]["content_type"] == "image/png"
    metrics = result["metrics"]
    assert set(metrics) >= {
        "inference_time",
        "queue_time",
        "total_time",
        "cost",
        "remaining_credits",
    }
    assert 0.03 <= metrics["inference_time"] <= 0.5
    assert metrics["remaining_credits"] == pytest.approx(10_000 - 0.12)
    async with http.get(result["output"]) as resp:
        data = await resp.read()
    assert len(data) == result["images"][0]["file_size"]


async def test_jobs_beyond_workers_stay_queued(start_emulator: StartEmulator, http):
    """With one worker busy, the next job reports QUEUED until the first is done."""
    # Latencies are long enough that a loaded machine cannot finish a job between two GETs.
    emu = await start_emulator(workers=1, latency=2.0, latency_jitter=0.0)
    first = await submit(http, emu, {"prompt": "one"})
    second = await submit(http, emu, {"prompt": "two"})
    states = []
    for job in (first, second):
        async with http.get(job["status_url"], headers=AUTH) as resp:
            states.append((await resp.json())["status"])
    assert states in (["PROCESSING", "QUEUED"], ["QUEUED", "QUEUED"])  # worker may not have begun
    _, done = await wait_final(http, second["response_url"], within=15)
    assert done["status"] == "COMPLETED"
    assert done["metrics"]["queue_time"] >= 1.9
    assert emu.stats()["peak_in_flight"] == 2


async def test_result_before_completion_answers_status_body(start_emulator: StartEmulator, http):
    """By default GET /v2/requests/{id} before completion is 200 with the status body."""
    emu = await start_emulator(latency=2.0, latency_jitter=0.0)
    accepted = await submit(http, emu, {"prompt": "x"})
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["status"] in ("QUEUED", "PROCESSING")
    assert "output" not in body


@pytest.mark.parametrize("early", ["404", "425"])
async def test_result_before_completion_odd_servers(start_emulator: StartEmulator, http, early):
    """The early_result knob makes the result URL answer 404 or 425 until the job is done."""
    emu = await start_emulator(latency=1.0, latency_jitter=0.0, early_result=early)
    accepted = await submit(http, emu, {"prompt": "x"})
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        assert resp.status == int(early)
    _status, _ = await wait_final(http, accepted["status_url"])
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        assert (await resp.json())["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("id_format", "pattern"),
    [
        ("hex32", r"[0-9a-f]{32}"),
        ("uuid", r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"),
        ("sequential", r"req-000001"),
    ],
)
async def test_request_id_formats(start_emulator: StartEmulator, http, id_format, pattern):
    """Request ids are opaque: the emulator can issue other formats than 32 hex."""
    emu = await start_emulator(id_format=id_format)
    accepted = await submit(http, emu, {"prompt": "x"})
    assert re.fullmatch(pattern, accepted["request_id"])
    status, _ = await wait_final(http, accepted["status_url"])
    assert status == 200


async def test_failed_job_body_on_status_and_result(start_emulator: StartEmulator, http):
    """A FAILED job is 422 with status, error and timing metrics on both URLs; not billed."""
    emu = await start_emulator(fail_rate=1.0)
    accepted = await submit(http, emu, {"prompt": "x"})
    status, body = await wait_final(http, accepted["status_url"])
    assert status == 422
    assert body["status"] == "FAILED"
    assert body["error"]
    assert set(body["metrics"]) == {"inference_time", "queue_time"}
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"] == body["error"]
    stats = emu.stats()
    assert (stats["failed"], stats["completed"], stats["credits_spent"]) == (1, 0, 0)


async def test_fail_rate_is_seeded(start_emulator: StartEmulator, http):
    """The same seed fails the same jobs; the rate is roughly the configured one."""
    outcomes = []
    for _ in range(2):
        emu = await start_emulator(fail_rate=0.3, seed=42, latency=0.0, latency_jitter=0.0)
        jobs = [await submit(http, emu, {"prompt": f"p{i}"}) for i in range(40)]
        finals = [(await wait_final(http, j["status_url"]))[1]["status"] for j in jobs]
        outcomes.append(finals)
    assert outcomes[0] == outcomes[1]
    assert 4 <= outcomes[0].count("FAILED") <= 20


async def test_records_expire_after_retention(emu: Emulator, http):
    """Past the retention, status and result are 404 with the spec's message."""
    accepted = await submit(http, emu, {"prompt": "x"})
    _status, _ = await wait_final(http, accepted["status_url"])
    emu.advance(3600.5)
    for url in (accepted["status_url"], accepted["response_url"]):
        async with http.get(url, headers=AUTH) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == f"Request {accepted['request_id']} not found"
    assert emu.stats()["not_found_polls"] == 2


async def test_retention_is_configurable_and_media_outlives_it(start_emulator: StartEmulator, http):
    """A short retention expires the record; the image URL stays downloadable (7 days)."""
    emu = await start_emulator(retention=10.0)
    result, _ = await generate(http, emu, {"prompt": "x"})
    emu.advance(11)
    async with http.get(f"{emu.base_url}/v2/requests/{result['request_id']}", headers=AUTH) as r:
        assert r.status == 404
    async with http.get(result["output"]) as resp:
        assert resp.status == 200
    emu.advance(7 * 24 * 3600)
    async with http.get(result["output"]) as resp:
        assert resp.status == 404


async def test_admin_advance_route_moves_the_clock(emu: Emulator, http):
    """POST /_emulator/advance is the HTTP form of emu.advance (for subprocess emulators)."""
    accepted = await submit(http, emu, {"prompt": "x"})
    async with http.post(f"{emu.base_url}/_emulator/advance", json={"seconds": 4000}) as resp:
        assert resp.status == 200
    async with http.get(accepted["status_url"], headers=AUTH) as resp:
        assert resp.status == 404


# -- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("ratio", ["1:1", "16:9", "2:3"])
async def test_image_format_and_proportions(emu: Emulator, http, fmt, ratio):
    """Images decode in the asked format at 1/8 of the native size for the aspect ratio."""
    result, data = await generate(
        http, emu, {"prompt": "x", "image_format": fmt, "aspect_ratio": ratio}
    )
    image = decode(data)
    assert image.format == fmt.upper()
    width, height = QWEN_ASPECT_RATIOS[ratio]
    assert image.size == (width // 8, height // 8)
    assert result["images"][0]["content_type"] == f"image/{fmt}"


async def test_full_size_images(start_emulator: StartEmulator, http):
    """--full-size serves the model's native resolution."""
    emu = await start_emulator(full_size=True)
    _, data = await generate(
        http, emu, {"prompt": "x", "aspect_ratio": "16:9", "image_format": "jpeg"}
    )
    assert decode(data).size == QWEN_ASPECT_RATIOS["16:9"]


async def test_quality_is_honoured(emu: Emulator, http):
    """A lower JPEG quality gives a smaller file of the same picture."""
    sizes = []
    for quality in (10, 100):
        _, data = await generate(
            http, emu, {"prompt": "x", "seed": 1, "image_format": "jpeg", "quality": quality}
        )
        sizes.append(len(data))
    assert sizes[0] < sizes[1] * 0.7


async def test_fixed_seed_is_deterministic_and_seeds_differ(start_emulator: StartEmulator, http):
    """Same prompt+seed+params give identical bytes across emulators; another seed differs."""
    params = {"prompt": "a castle", "seed": 1234, "guidance": 4.0}
    first = await start_emulator(seed=1)
    second = await start_emulator(seed=2)
    _, a = await generate(http, first, params)
    _, b = await generate(http, second, params)
    _, c = await generate(http, first, {**params, "seed": 1235})
    assert a == b
    assert a != c


async def test_random_seed_is_resolved_and_reported(emu: Emulator, http):
    """seed -1 (or absent) is resolved to a concrete seed that the result reports and reproduces."""
    result, data = await generate(http, emu, {"prompt": "x", "seed": -1})
    seed = result["seed"]
    assert isinstance(seed, int)
    assert seed >= 0
    _again, same = await generate(http, emu, {"prompt": "x", "seed": seed})
    assert same == data


async def test_base64_output(emu: Emulator, http):
    """With base64: true, `output` carries the image itself."""
    accepted = await submit(http, emu, {"prompt": "x", "base64": True, "image_format": "webp"})
    await wait_final(http, accepted["status_url"])
    async with http.get(accepted["response_url"], headers=AUTH) as resp:
        result = await resp.json()
    assert decode(base64.b64decode(result["output"])).format == "WEBP"


# -- v1 sync and credits -------------------------------------------------------------------------


async def test_sync_v1_returns_bytes_with_headers(emu: Emulator, http):
    """POST /v1/{model} blocks until done and returns the image with the v1 headers."""
    async with http.post(
        f"{emu.base_url}/v1/qwen-image", json={"prompt": "x", "seed": -1}, headers=AUTH
    ) as resp:
        assert resp.status == 200
        data = await resp.read()
        headers = resp.headers
    assert decode(data).format == "PNG"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert float(headers["x-cost"]) == pytest.approx(0.12)
    assert float(headers["x-remaining-credits"]) == pytest.approx(10_000 - 0.12)
    assert float(headers["x-generation-time"]) > 0
    assert int(headers["x-seed-value"]) >= 0
    assert emu.stats()["sync_accepted"] == 1


async def test_sync_v1_base64_and_failure(emu: Emulator, http):
    """v1 with base64 answers JSON {"image": ...}; a failing prompt answers 422, not billed."""
    url = f"{emu.base_url}/v1/qwen-image"
    async with http.post(url, json={"prompt": "x", "base64": True}, headers=AUTH) as resp:
        body = await resp.json()
    assert decode(base64.b64decode(body["image"])).format == "PNG"
    async with http.post(url, json={"prompt": "x [fail]"}, headers=AUTH) as resp:
        assert resp.status == 422
        assert "content filter" in (await resp.json())["error"]
    assert emu.stats()["credits_spent"] == pytest.approx(0.12)


async def test_credits_endpoint_and_exhaustion(start_emulator: StartEmulator, http):
    """Credits run out after balance/cost jobs; then submits get 406 and the balance shows it."""
    emu = await start_emulator(credits=0.30, cost_per_image=0.12)
    for _ in range(2):
        await submit(http, emu, {"prompt": "x"})
    async with http.post(f"{emu.base_url}/v2/qwen-image", json={"prompt": "x"}, headers=AUTH) as r:
        assert r.status == 406
        assert "Insufficient credits" in (await r.json())["error"]
    async with http.get(f"{emu.base_url}/v1/get-user-credits", headers=AUTH) as resp:
        assert (await resp.json())["credits"] == pytest.approx(0.06)
    assert emu.stats()["submits_accepted"] == 2


async def test_credits_exhaustion_as_402(start_emulator: StartEmulator, http):
    """The credits_status knob answers 402 instead, as seen on v2."""
    emu = await start_emulator(credits=0.0, credits_status=402)
    async with http.post(f"{emu.base_url}/v2/qwen-image", json={"prompt": "x"}, headers=AUTH) as r:
        assert r.status == 402


async def test_failed_jobs_refund_credits(start_emulator: StartEmulator, http):
    """A FAILED job's reservation is returned, so the balance allows another job."""
    emu = await start_emulator(credits=0.12)
    accepted = await submit(http, emu, {"prompt": "x [fail]"})
    await wait_final(http, accepted["status_url"])
    await submit(http, emu, {"prompt": "x"})


# -- media origin and counters ------------------------------------------------------------------


async def test_media_on_another_origin_and_key_leak_counter(start_emulator: StartEmulator, http):
    """With media_origin, output URLs point at a second port; downloads carrying the key count."""
    emu = await start_emulator(media_origin=True)
    result, _ = await generate(http, emu, {"prompt": "x"})
    assert emu.media_url != emu.base_url
    assert result["output"].startswith(emu.media_url + "/media/")
    assert emu.stats()["media_with_api_key"] == 0
    async with http.get(result["output"], headers=AUTH) as resp:
        assert resp.status == 200
    assert emu.stats()["media_with_api_key"] == 1


async def test_counters_duplicates_and_polls(emu: Emulator, http):
    """Paid submits are counted per fingerprint; the same params twice is one duplicate."""
    params = {"prompt": "same", "seed": 9}
    first = await submit(http, emu, params)
    await submit(http, emu, params)
    await submit(http, emu, {"prompt": "other"})
    await wait_final(http, first["status_url"])
    async with http.get(f"{emu.base_url}/_emulator/stats") as resp:
        stats = await resp.json()
    assert stats["paid_submits"] == 3
    assert stats["duplicate_paid_submits"] == 1
    assert list(stats["duplicates"].values()) == [1]
    assert stats["polls_by_request"][first["request_id"]] >= 1
    assert stats["requests"]["submit"] == 3
    async with http.get(f"{emu.base_url}/_emulator/stats?detail=0") as resp:
        assert "polls_by_request" not in await resp.json()


async def test_client_ignores_unknown_paths(emu: Emulator, http: aiohttp.ClientSession):
    """Paths outside the API are plain 404s and are not counted as API traffic."""
    async with http.get(f"{emu.base_url}/v3/whatever", headers=AUTH) as resp:
        assert resp.status == 404
    assert emu.stats()["requests_total"] == 0
