"""The ``peers`` test runs only when asked for (``-m peers``): it installs Huey into
``.venv-peers/huey/`` from PyPI and runs the benchmark, which takes minutes. It fails with
a clear message when the install fails (never skips)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "peers" in (config.getoption("markexpr", "") or ""):
        return
    opt_in = [item for item in items if item.get_closest_marker("peers")]
    if opt_in:
        config.hook.pytest_deselected(items=opt_in)
        items[:] = [item for item in items if item not in opt_in]
