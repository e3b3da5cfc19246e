"""The model tables: what each known model accepts, its image slots and outputs (no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchgen.core.errors import ManifestError
from batchgen.manifest.estimate import estimate
from batchgen.manifest.loader import Manifest
from batchgen.models.registry import MODELS, image_slot, schema_for

URL = "https://images.example/a.png"

# The smallest valid request of each model.
MINIMAL: dict[str, dict[str, Any]] = {
    "qwen-image": {"prompt": "a fox"},
    "qwen-image-edit": {"prompt": "make it night", "image": URL},
    "qwen-image-edit-fast": {"prompt": "make it night", "image": URL},
    "qwen-image-edit-plus": {"prompt": "put 2 in 1", "image": URL, "image_2": URL, "image_3": None},
    "flux-kontext-pro": {"prompt": "a photograph"},
    "flux-kontext-dev": {"prompt": "bokeh", "input_image": URL},
    "multi-image-kontext-pro": {"prompt": "selfie", "input_image_1": URL, "input_image_2": URL},
    "seedream-4.5": {"prompt": "a shoot", "image_input": [URL, URL], "max_images": 3},
    "nano-banana": {"prompt": "dancing banana", "image_urls": [URL]},
}


def test_every_model_has_a_minimal_example_and_it_is_valid():
    assert set(MINIMAL) == set(MODELS)
    for name, params in MINIMAL.items():
        assert MODELS[name].validate(params) == [], name


def test_unknown_models_have_no_schema_and_no_slots():
    assert schema_for("some-upscaler") is None
    assert image_slot("some-upscaler", "image") is None


@pytest.mark.parametrize(
    ("model", "param", "many", "required", "max_count"),
    [
        ("qwen-image-edit", "image", False, True, 1),
        ("qwen-image-edit-plus", "image_3", False, False, 1),
        ("flux-kontext-pro", "input_image", False, False, 1),
        ("multi-image-kontext-pro", "input_image_2", False, True, 1),
        ("seedream-4.5", "image_input", True, False, 14),
        ("nano-banana", "image_urls", True, False, None),
    ],
)
def test_image_slots_say_single_or_list_and_how_many(
    model: str, param: str, many: bool, required: bool, max_count: int | None
):
    slot = image_slot(model, param)
    assert slot is not None
    assert (slot.many, slot.required, slot.max_count) == (many, required, max_count)


def test_non_image_params_and_text_models_have_no_slots():
    assert image_slot("qwen-image", "prompt") is None
    assert image_slot("seedream-4.5", "max_images") is None
    assert not MODELS["qwen-image"].takes_images
    assert image_slot("flux-kontext-dev", "input_image").formats == ("jpeg", "png", "gif", "webp")  # type: ignore[union-attr]


def _messages(model: str, params: dict[str, Any]) -> dict[str, str]:
    return {p.field: p.message for p in MODELS[model].validate(params)}


def test_missing_required_image_is_reported():
    assert "is required" in _messages("qwen-image-edit", {"prompt": "x"})["image"]
    both = _messages("multi-image-kontext-pro", {"prompt": "x", "input_image_1": URL})
    assert "is required" in both["input_image_2"]


def test_image_slot_given_to_a_text_only_model_is_refused():
    message = _messages("qwen-image", {"prompt": "x", "image": URL})["image"]
    assert "is not a parameter of qwen-image" in message


def test_list_slot_with_too_many_images_is_refused():
    message = _messages("seedream-4.5", {"prompt": "x", "image_input": [URL] * 15})["image_input"]
    assert "0 to 14" in message
    assert "got 15" in message


def test_image_values_are_strings_and_lists_of_strings():
    assert "got an integer" in _messages("qwen-image-edit", {"prompt": "x", "image": 3})["image"]
    assert (
        "must not be empty" in _messages("qwen-image-edit", {"prompt": "x", "image": " "})["image"]
    )
    single = _messages("seedream-4.5", {"prompt": "x", "image_input": URL})["image_input"]
    assert "got a string" in single
    item = _messages("nano-banana", {"prompt": "x", "image_urls": [URL, 7]})["image_urls"]
    assert item.startswith("item 2 ")
    assert "image_3" not in _messages("qwen-image-edit-plus", MINIMAL["qwen-image-edit-plus"])


def test_seedream_inputs_plus_outputs_at_most_15():
    ok = {"prompt": "x", "image_input": [URL] * 10, "max_images": 5}
    assert MODELS["seedream-4.5"].validate(ok) == []
    message = _messages("seedream-4.5", {**ok, "max_images": 6})["max_images"]
    assert "at most 5" in message


def test_choices_and_ranges_of_new_models():
    assert (
        "did you mean '16:9'"
        in _messages("flux-kontext-pro", {"prompt": "x", "aspect_ratio": "16:8"})["aspect_ratio"]
    )
    assert (
        "from 0 to 6"
        in _messages("flux-kontext-pro", {"prompt": "x", "safety_tolerance": 7})["safety_tolerance"]
    )
    assert (
        "one of 'jpg', 'png'"
        in _messages("flux-kontext-pro", {"prompt": "x", "output_format": "jpeg"})["output_format"]
    )
    assert (
        "did you mean 'max_images'"
        in _messages("seedream-4.5", {"prompt": "x", "max_image": 2})["max_image"]
    )
    assert (
        "from 1 to 25"
        in _messages("qwen-image-edit", {**MINIMAL["qwen-image-edit"], "guidance": 30})["guidance"]
    )


def test_outputs_and_formats():
    seedream = MODELS["seedream-4.5"]
    assert seedream.outputs_for({"max_images": 3}) == 3
    assert seedream.outputs_for({}) == 1
    assert MODELS["qwen-image"].outputs_for({"max_images": 3}) == 1
    assert MODELS["flux-kontext-pro"].output_format({"output_format": "jpg"}) == "jpeg"
    assert MODELS["flux-kontext-pro"].output_format({}) == "png"
    assert MODELS["qwen-image"].output_format({"image_format": "webp"}) == "webp"
    assert MODELS["qwen-image-edit"].output_format({}) == "png"
    assert MODELS["qwen-image-edit"].asked_format({}) is None  # not documented: not checked
    assert MODELS["flux-kontext-dev"].asked_format({"output_format": "webp"}) == "webp"


def test_image_inputs_lists_every_given_image():
    plus = MODELS["qwen-image-edit-plus"].image_inputs(MINIMAL["qwen-image-edit-plus"])
    assert plus == {"image": [URL], "image_2": [URL]}
    assert MODELS["seedream-4.5"].image_inputs({"image_input": []}) == {}


PARAM_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=5000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
    | st.sampled_from([URL, "match_input_image", "2K", "jpg", "png", 1, 14, 15])
    | st.lists(st.sampled_from([URL, "", 3]), max_size=16)
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(sorted(MODELS)),
    data=st.data(),
)
def test_validate_fast_path_equals_full_check_for_every_model(model: str, data: st.DataObject):
    """validate()'s fast path agrees with the full check on every table, rules included."""
    schema = MODELS[model]
    keys = st.sampled_from([*schema.params, "x"])
    params = data.draw(st.dictionaries(keys, PARAM_VALUES, max_size=6))
    assert schema.validate(params) == schema._problems(params)


def _load_problems(load: Callable[..., Manifest], name: str, text: str) -> list[str]:
    try:
        return [str(p) for p in load(name, text).scan().problems]
    except ManifestError as exc:
        return [str(p) for p in exc.problems]


def test_manifest_validates_edit_models(load: Callable[..., Manifest]):
    good = "model: qwen-image-edit\njobs:\n  - {prompt: night, image: https://x/a.png}\n"
    assert _load_problems(load, "ok.yaml", good) == []
    rows = (
        '{"model": "flux-kontext-pro", "prompt": "x", "input_image": "u", "safety_tolerence": 2}\n'
        '{"model": "seedream-4.5", "prompt": "x", "image_input": "u"}\n'
    )
    problems = _load_problems(load, "rows.jsonl", rows)
    assert any("rows.jsonl:1" in p and "did you mean 'safety_tolerance'" in p for p in problems)
    assert any("rows.jsonl:2" in p and "image_input" in p and "a list" in p for p in problems)


def test_estimate_uses_each_models_latency_and_price(load: Callable[..., Manifest]):
    m = load("s.yaml", "model: seedream-4.5\njobs:\n  - {prompt: x}\n")
    figures = estimate({m.model: 10}, m.settings)
    assert figures.latency_seconds == MODELS["seedream-4.5"].typical_seconds
    assert figures.cost_usd == pytest.approx(10 * 0.04)
    unknown_price = estimate({"qwen-image-edit": 10}, m.settings)
    assert unknown_price.cost_usd is None
