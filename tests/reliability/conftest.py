"""The reliability campaign (issue 8): every test here is marked `reliability`.

CI runs the short form (`pytest`); `pytest tests/reliability --long` runs the full campaign whose
figures the README publishes. Tests read the `long_form` fixture to pick their sizes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


LONG_TIMEOUT = 1200  # seconds per test at full size (the short forms keep the 60 s default)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    long_form = bool(config.getoption("--long"))
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.reliability)
            if long_form:
                item.add_marker(pytest.mark.timeout(LONG_TIMEOUT))
