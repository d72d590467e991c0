"""Actor processes: ``stem supervise``, ``stem worker``, ``stem reclaim``, ``stem beat``.

Each is a real ``python -m stem`` process in its own session (so its own process group:
a signal to the group reaches its pool children too), logging to a file in the stack's
folder. ``Actor.stop()`` sends SIGTERM to the group, waits, then SIGKILLs the group;
``Actor.signal()`` is for the scenario's faults (SIGKILL, SIGSTOP, SIGCONT).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
APP_SPEC = "chaos.jobs:app"


@dataclass
class Actor:
    """One actor process (and its group)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Actor:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[psutil.Process]:
        """Live descendants (a supervisor's actors, a worker's pool children)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.pid).children(recursive=True)
        return []

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        """Send ``sig`` to the process (or its whole group)."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the group, wait up to ``timeout_s``, then SIGKILL it; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT, group=True)  # a stopped process cannot exit
            self.signal(signal.SIGTERM, group=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        self.signal(signal.SIGKILL, group=True)  # whatever of the group is left
        code = self.proc.wait()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def stem_argv(redis_url: str, namespace: str, *command: str, app: str = APP_SPEC) -> list[str]:
    """``python -m stem --redis-url U --namespace N --app A <command...>``."""
    base = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--namespace", namespace]
    return [*base, "--app", app, *command]


def actor_env(ledger: Path, lease_s: float | None, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEM_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["CHAOS_LEDGER"] = str(ledger)
    if lease_s is not None:
        env["CHAOS_LEASE_S"] = str(lease_s)
    env.update(extra or {})
    return env


def wait_for(predicate: object, timeout_s: float, what: str, poll_s: float = 0.05) -> float:
    """Poll ``predicate()`` until true; the seconds it took. ``TimeoutError`` names ``what``."""
    assert callable(predicate)
    start = time.monotonic()
    deadline = start + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
    return time.monotonic() - start
