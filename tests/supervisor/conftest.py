"""Fixtures for the supervisor tests (helpers live in ``helpers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from tests.supervisor.helpers import gone


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Fail a test that leaves a live child process of the test runner behind."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    after = [p for p in me.children(recursive=True) if p.pid not in before and not gone(p)]
    for process in after:
        process.kill()
    assert after == [], f"processes left running: {after}"
