"""Fixtures for the beat service tests: captured beat logs, the CLI, real beat processes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from stem import Stem
from stem.cli import output
from stem.cli.schedule import schedule


class Records(logging.Handler):
    """Collects the records of one logger (independent of propagation and capture)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.DEBUG) -> list[str]:
        """The formatted messages at ``level`` or above."""
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def beat_log() -> Iterator[Records]:
    """Every record logged by ``stem.beat`` during the test."""
    handler = Records()
    logger = logging.getLogger("stem.beat")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def cli(app: Stem, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``cli("show", "x")`` runs ``stem schedule show x`` on the test's app, printing as
    on a terminal (tests/cli checks the pipe form); exceptions are left on the result
    (``result.exception``), as the root CLI would see them."""
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(schedule, list(args), obj=SimpleNamespace(app=app))

    return invoke
