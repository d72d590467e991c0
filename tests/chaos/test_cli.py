"""``python -m chaos``: its listing and its one-line errors for bad arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chaos.scenarios import load_all

ROOT = Path(__file__).resolve().parents[2]


def chaos(*argv: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "chaos", *argv]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_list_names_every_scenario_on_one_line_each() -> None:
    done = chaos("list")
    assert (done.returncode, done.stderr) == (0, "")
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(load_all())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("run", "no-such-scenario"), "chaos: error: unknown scenario 'no-such-scenario'"),
        (("run", "--duration", "-1"), "chaos: error: --duration must be > 0"),
        (("fly",), "chaos: error: argument command: invalid choice: 'fly'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: tuple[str, ...], message: str) -> None:
    done = chaos(*argv)
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(message)
