"""Every command's ``--help`` works and shows an example; the root documents exit codes."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from stem.cli import main
from tests.cli.conftest import Invoke


def _paths(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _paths(sub, (*path, name))


COMMANDS = list(_paths(main))


def test_the_tree_has_every_command_of_the_design() -> None:
    names = {" ".join(p) for p in COMMANDS}
    expected = {
        "supervise", "worker", "reclaim", "beat", "enqueue", "result get", "result wait",
        "observe queues", "observe workers", "observe metrics", "dlq list", "dlq show",
        "dlq replay", "dlq purge", "schedule list", "ratelimit", "limit list", "limit show",
        "limit set", "limit clear",
    }  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "stem")
def test_help_exits_0_and_contains_an_example(bare: Invoke, path: tuple[str, ...]) -> None:
    result = bare(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Example" in result.stdout
    assert result.stderr == ""


def test_the_root_help_lists_the_exit_codes(bare: Invoke) -> None:
    out = bare("--help").stdout
    for line in ("0    ok", "2    usage or config error", "3    Redis unreachable", "130"):
        assert line in out


def test_examples_keep_their_line_breaks(bare: Invoke) -> None:
    out = bare("enqueue", "--help").stdout
    assert "  stem enqueue myapp.jobs.resize --args '[42, 800]'\n" in out
