"""Helpers for the supervisor tests: child command lines, polling, process checks."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
import trio

from supervisor import ChildSpec, ChildState, ChildStatistics, Supervisor

CHILDREN = Path(__file__).with_name("children")
CHILD = str(CHILDREN / "child.py")
RUN_SUPERVISOR = str(CHILDREN / "run_supervisor.py")
REPO_ROOT = str(Path(__file__).resolve().parents[2])

# Generous: the machine is small and shared. Only failing tests ever wait this long.
WAIT_S = 30.0


def child(*args: str) -> list[str]:
    """The command line of ``children/child.py`` in one of its modes."""
    return [sys.executable, CHILD, *args]


def spec(name: str, *args: str, **kwargs: Any) -> ChildSpec:
    """A spec running ``child.py *args`` from the repository root, quick to stop."""
    kwargs.setdefault("stop_timeout_s", 5.0)
    return ChildSpec(name, child(*args), cwd=REPO_ROOT, **kwargs)


async def wait_until(predicate: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout_s``."""
    try:
        with trio.fail_after(timeout_s):
            while not predicate():
                await trio.sleep(0.02)
    except trio.TooSlowError:
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}") from None


def stats(supervisor: Supervisor, label: str) -> ChildStatistics:
    """The statistics record of one replica, by label."""
    (found,) = [s for s in supervisor.statistics() if s.label == label]
    return found


def running(supervisor: Supervisor, label: str, *, restarts: int = 0) -> bool:
    """True once ``label`` runs with at least ``restarts`` restarts."""
    record = stats(supervisor, label)
    return record.state is ChildState.RUNNING and record.restarts >= restarts


def gone(process: psutil.Process) -> bool:
    """True if the process has exited (a zombie counts as exited)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants, as psutil handles (safe against pid reuse)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def parsed(output: io.StringIO | str) -> list[tuple[str, str]]:
    """Text-mode output as (label, text) pairs."""
    text = output if isinstance(output, str) else output.getvalue()
    pairs = [line.partition(" | ") for line in text.splitlines()]
    return [(label.strip(), said) for label, sep, said in pairs if sep]


def lines_of(output: io.StringIO | str, label: str) -> list[str]:
    """The text of ``label``'s lines in text-mode output."""
    return [said for who, said in parsed(output) if who == label]


def who_said(output: io.StringIO | str, text: str) -> list[str]:
    """The labels that wrote exactly ``text``, in output order."""
    return [who for who, said in parsed(output) if said == text]


async def wait_ready(output: io.StringIO, *labels: str) -> None:
    """Wait until each of ``labels`` printed ``ready`` (its signal handlers are set)."""
    for label in labels:
        await wait_until(lambda: "ready" in lines_of(output, label), f"{label} ready")  # noqa: B023


@contextlib.asynccontextmanager
async def supervising(
    specs: Iterable[ChildSpec], **kwargs: Any
) -> AsyncIterator[tuple[Supervisor, io.StringIO]]:
    """Serve a Supervisor (output captured) for the body, then stop it and wait."""
    output = io.StringIO()
    supervisor = Supervisor(specs, output=output, **kwargs)
    with trio.fail_after(WAIT_S * 2):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.serve)
            yield supervisor, output
            supervisor.request_stop()
