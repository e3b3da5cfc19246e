"""The speed-ups of validation and job identity must agree with the plain definitions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from batchgen.core.jobs import canonical_json, identity_payload
from batchgen.models.registry import QWEN_IMAGE

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
KEYS = st.sampled_from([*QWEN_IMAGE.params, "guidanse", "x", "_note", "seed"]) | st.text(max_size=6)


@settings(max_examples=400, deadline=None)
@given(params=st.dictionaries(KEYS, SCALARS | st.sampled_from(["1:1", "png", "jpeg", -1, 30])))
def test_validate_fast_path_equals_full_check(params: dict[str, object]):
    """validate() returns exactly what the full per-parameter check returns."""
    assert QWEN_IMAGE.validate(params) == QWEN_IMAGE._problems(params)


@settings(max_examples=400, deadline=None)
@given(
    model=st.text(max_size=10),
    params=st.dictionaries(st.text(max_size=8), SCALARS | st.sampled_from([-1, 7.0, -0.0])),
    repeat=st.integers(min_value=0, max_value=1000),
)
def test_identity_payload_equals_canonical_json(model: str, params: dict[str, object], repeat: int):
    """The hand-built payload is byte-identical to canonical JSON (or fails the same way)."""
    unresolved = {k: v for k, v in params.items() if not (k == "seed" and v == -1)}
    try:
        expected: bytes | type[Exception] = canonical_json(
            {"m": model, "p": unresolved, "r": repeat}
        ).encode()
    except ValueError:
        expected = ValueError
    try:
        actual: bytes | type[Exception] = identity_payload(model, params, repeat)
    except ValueError:
        actual = ValueError
    assert actual == expected
