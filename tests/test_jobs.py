"""Job identity: stable, unique, file-name-safe ids; seeds from ids; confined output names."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchgen.core.jobs import (
    Job,
    explicit_id_problem,
    generated_id,
    identity_payload,
    output_name,
    output_path,
    resolve_seed,
)
from batchgen.manifest.loader import Manifest, load_manifest
from tests.helpers import write_jsonl

SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
prompts = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
rows = st.lists(
    st.fixed_dictionaries(
        {"prompt": prompts},
        optional={
            "guidance": st.floats(1, 20),
            "steps": st.integers(1, 50),
            "seed": st.integers(-1, 2**31),
        },
    ),
    min_size=1,
    max_size=20,
)


def _ids(path: Path) -> list[str]:
    return [j.id for j in load_manifest(path).jobs()]


@settings(max_examples=40, deadline=None)
@given(rows)
def test_ids_stable_unique_and_safe(
    tmp_path_factory: pytest.TempPathFactory, data: list[dict[str, object]]
) -> None:
    """The same rows always give the same ids; ids are unique (even for duplicate rows) and safe."""
    path = tmp_path_factory.mktemp("m") / "m.jsonl"
    write_jsonl(path, data)
    first, second = _ids(path), _ids(path)
    assert first == second
    assert len(set(first)) == len(first)
    assert all(SAFE.fullmatch(i) and ".." not in i for i in first)


@settings(max_examples=30, deadline=None)
@given(rows, st.data())
def test_editing_one_row_changes_only_its_id(
    tmp_path_factory: pytest.TempPathFactory, data: list[dict[str, object]], draw: st.DataObject
) -> None:
    """Changing one job's params changes that job's id and no other (for distinct rows)."""
    path = tmp_path_factory.mktemp("m") / "m.jsonl"
    unique = [dict(r, prompt=f"{i}:{r['prompt']}") for i, r in enumerate(data)]
    write_jsonl(path, unique)
    before = _ids(path)
    k = draw.draw(st.integers(0, len(unique) - 1))
    unique[k] = dict(unique[k], prompt=unique[k]["prompt"] + " edited")
    write_jsonl(path, unique)
    after = _ids(path)
    assert [a != b for a, b in zip(before, after, strict=True)] == [
        i == k for i in range(len(unique))
    ]


def test_duplicate_rows_get_distinct_deterministic_ids(load: Callable[..., Manifest]) -> None:
    """Identical rows stay distinct jobs; the first keeps the id a single row would have."""
    single = [j.id for j in load("a.jsonl", '{"prompt": "x"}\n').jobs()]
    triple = [j.id for j in load("b.jsonl", '{"prompt": "x"}\n' * 3).jobs()]
    assert triple[0] == single[0]
    assert len(set(triple)) == 3


def test_seed_minus_one_equals_absent_and_resolves_from_id(load: Callable[..., Manifest]) -> None:
    """seed -1 and no seed give the same id; the chosen seed is a function of the id."""
    a = next(load("a.jsonl", '{"prompt": "x", "seed": -1}\n').jobs())
    b = next(load("b.jsonl", '{"prompt": "x"}\n').jobs())
    assert a.id == b.id
    assert a.seed == b.seed == resolve_seed(a.id)
    assert a.seed_resolved
    assert 0 <= a.seed < 2**31


def test_fixed_seed_is_kept(load: Callable[..., Manifest]) -> None:
    """An explicit seed is sent as given and not marked as resolved."""
    job = next(load("a.jsonl", '{"prompt": "x", "seed": 7}\n').jobs())
    assert job.seed == 7
    assert not job.seed_resolved


def test_integral_float_hashes_like_int() -> None:
    """guidance 7 and 7.0 are the same request, so the same id."""
    a = identity_payload("m", {"prompt": "p", "guidance": 7}, 0)
    b = identity_payload("m", {"prompt": "p", "guidance": 7.0}, 0)
    assert generated_id(a) == generated_id(b)


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "..x", "a..b", ".hidden", "-x", "a b", "x\n", "é", "CON", "x" * 129, 5.5, None],
)
def test_unsafe_explicit_ids_rejected(bad: object) -> None:
    """Ids that could escape a folder or break on some file system are refused."""
    assert explicit_id_problem(bad) is not None


@given(st.text(max_size=200))
def test_accepted_ids_are_safe(text: str) -> None:
    """Whatever id is accepted is a plain, short, safe file-name stem."""
    if explicit_id_problem(text) is None:
        assert SAFE.fullmatch(text)
        assert ".." not in text
        assert len(text) <= 128


@pytest.mark.parametrize(
    "template", ["../{id}.{ext}", "/abs/{id}.{ext}", "{id}/../../x.{ext}", "a.{ext}", "{nope}{id}"]
)
def test_output_name_never_escapes(template: str) -> None:
    """Templates that would leave the output folder or collide are refused."""
    with pytest.raises(ValueError, match=r"template|folder"):
        output_name(Job(id="a", model="m", params={}), "png", template)


def test_output_path_default(tmp_path: Path) -> None:
    """The default name is {id}.{ext} inside the output folder."""
    assert output_path(tmp_path, Job(id="a", model="m", params={}), "png") == tmp_path / "a.png"
