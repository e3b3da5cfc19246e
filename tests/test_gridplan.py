"""Grid planning and geometry, pure: cells, tiling, errors, and the size cap."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchgen.views.griddraw import MIN_THUMB, geometry
from batchgen.views.gridplan import GridError, parse_where, plan_grid, show_value
from batchgen.views.rundata import Item, image_path


def item(n: int, state: str = "completed", **params: object) -> Item:
    row = {"file_name": f"{n}.png", "id": f"job{n}", "request_id": "r", **params}
    if state == "completed":
        return Item(f"job{n}", "completed", row, file=f"{n}.png")
    return Item(f"job{n}", "failed", row, error="server: boom")


def sweep(guidance: list[float], seeds: list[int], **fixed: object) -> list[Item]:
    pairs = itertools.product(guidance, seeds)
    return [item(n, guidance=g, seed=s, **fixed) for n, (g, s) in enumerate(pairs)]


def test_cells_follow_the_axes_sorted_numerically():
    """Numbers are sorted (not by first appearance), 4 and 4.0 are one column."""
    items = sweep([7, 2.5, 4.0], [2, 1], prompt="fox")
    items.append(item(99, guidance=4, seed=3, prompt="fox"))
    plan = plan_grid(items, "guidance", "seed")
    assert plan.xs == (2.5, 4.0, 7)
    assert plan.ys == (1, 2, 3)
    assert len(plan.panels) == 1
    grid = plan.panels[0].rows
    by_job = {i.job_id: (i.row["guidance"], i.row["seed"]) for i in items}
    for r, yv in enumerate(plan.ys):
        for c, xv in enumerate(plan.xs):
            cell = grid[r][c]
            if cell.status == "image":
                assert by_job[str(cell.job_id)] == (xv, yv)
    assert (plan.count("image"), plan.count("missing")) == (7, 2)
    assert dict(plan.constant) == {"prompt": "fox"}


def test_failed_cells_carry_the_error_and_missing_cells_are_marked():
    """A failed job shows its error; a combination nobody ran is 'missing'."""
    items = [item(0, guidance=1, seed=1), item(1, "failed", guidance=2, seed=1)]
    items.append(item(2, guidance=1, seed=2))
    plan = plan_grid(items, "guidance", "seed")
    (row1, row2) = plan.panels[0].rows
    assert [c.status for c in row1] == ["image", "failed"]
    assert row1[1].error == "server: boom"
    assert [c.status for c in row2] == ["image", "missing"]


def test_other_varying_parameters_tile_into_panels():
    """prompt varies too and is not pinned: one panel per prompt, never a silent pick."""
    items = sweep([1, 2], [1, 2], prompt="fox") + sweep([1, 2], [1, 2], prompt="owl")
    plan = plan_grid(items, "guidance", "seed")
    assert [dict(p.fixed) for p in plan.panels] == [{"prompt": "fox"}, {"prompt": "owl"}]
    assert plan.count("image") == 8


def test_where_pins_a_parameter_and_compares_numbers_by_value():
    items = sweep([1, 2], [1, 2], prompt="fox") + sweep([1, 2], [1, 2], prompt="owl")
    plan = plan_grid(items, "prompt", "seed", parse_where(["guidance=2.0"]))
    assert plan.where == (("guidance", 2),)
    assert plan.xs == ("fox", "owl")
    assert plan.count("image") == 4


def test_where_accepts_the_start_of_a_long_text_value_when_it_is_unique():
    items = sweep([1], [1, 2], prompt="an old fisherman mending a net")
    items += sweep([1], [1, 2], prompt="an old lighthouse")
    plan = plan_grid(items, "guidance", "seed", parse_where(["prompt=an old fish"]))
    assert plan.where == (("prompt", "an old fisherman mending a net"),)
    assert "prompt" not in dict(plan.constant)  # said once, as pinned
    with pytest.raises(GridError, match="2 values start with that"):
        plan_grid(items, "guidance", "seed", parse_where(["prompt=an old"]))


def test_unknown_parameter_suggests_the_closest():
    with pytest.raises(GridError, match=r"did you mean 'guidance'\?.*parameters in this run"):
        plan_grid(sweep([1], [1]), "guidanse", "seed")


def test_where_value_not_in_the_run_lists_the_values():
    with pytest.raises(GridError, match=r"seed is one of: 1, 2"):
        plan_grid(sweep([1], [1, 2], prompt="fox"), "guidance", "prompt", parse_where(["seed=9"]))


def test_too_many_panels_names_what_varies():
    """Past max_panels the error lists each varying parameter with its values."""
    items = [item(n, guidance=1, seed=1, steps=n, quality=50 + n) for n in range(5)]
    with pytest.raises(GridError) as caught:
        plan_grid(items, "guidance", "seed", max_panels=4)
    text = str(caught.value)
    assert "steps (5 values): 0, 1, 2, 3, 4" in text
    assert "quality (5 values)" in text


@pytest.mark.parametrize(("x", "y", "where"), [("seed", "seed", ()), ("seed", "x", ())])
def test_bad_axes_are_refused(x: str, y: str, where: tuple[str, ...]):
    with pytest.raises(GridError):
        plan_grid(sweep([1], [1]), x, y, parse_where(where))


def test_where_without_equals_is_refused():
    with pytest.raises(GridError, match="PARAM=VALUE"):
        parse_where(["seed"])


def test_values_show_as_typed():
    assert [show_value(v) for v in (4.0, 2.5, True, None, "a")] == [
        "4",
        "2.5",
        "true",
        "(none)",
        "a",
    ]


@given(
    cols=st.integers(1, 60),
    rows=st.integers(1, 60),
    panels=st.integers(1, 16),
    thumb=st.integers(MIN_THUMB, 512),
    max_side=st.integers(400, 10_000),
)
def test_geometry_respects_the_size_cap(cols: int, rows: int, panels: int, thumb: int,
                                        max_side: int):  # fmt: skip
    """Whatever the grid, the sheet fits max_side or the request is refused; cells never
    overlap and stay inside the sheet."""
    try:
        shape = geometry(cols, rows, panels, thumb, max_side)
    except GridError:
        assert geometry(cols, rows, panels, MIN_THUMB, 10**9).cell == MIN_THUMB
        return
    assert max(shape.width, shape.height) <= max_side
    assert MIN_THUMB <= shape.cell <= thumb
    last = shape.cell_box(panels - 1, rows - 1, cols - 1)
    assert last[2] <= shape.width
    assert last[3] <= shape.height
    first, right = shape.cell_box(0, 0, 0), shape.cell_box(0, 0, min(1, cols - 1))
    assert right[0] in (first[0], first[2])


def test_image_paths_never_leave_the_folder(tmp_path):
    rng = random.Random(9)
    bad = ["../x.png", "/etc/passwd", "a/../../b", "a\\..\\b", "", "./x", "a//b", "x\x00y"]
    for text in bad:
        assert image_path(tmp_path, text) is None
    for _ in range(50):
        name = "/".join(rng.choice(["a", "b1", "c.png", "data"]) for _ in range(rng.randint(1, 4)))
        path = image_path(tmp_path, name)
        assert path is not None
        assert path.resolve().is_relative_to(tmp_path.resolve())
