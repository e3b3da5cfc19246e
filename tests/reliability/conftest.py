"""The reliability campaign (issue 8): every test here is marked `reliability`.

CI runs the short form (`pytest`); `pytest tests/reliability --long` runs the full campaign whose
figures the README publishes. Tests read the `long_form` fixture to pick their sizes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.reliability)
