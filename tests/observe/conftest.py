"""The ``promtool`` tests run only when asked for (``-m promtool``): they need Debian's
``prometheus`` package, and fail with a clear message without it (never skip)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "promtool" in (config.getoption("markexpr", "") or ""):
        return
    opt_in = [item for item in items if item.get_closest_marker("promtool")]
    if opt_in:
        config.hook.pytest_deselected(items=opt_in)
        items[:] = [item for item in items if item not in opt_in]
