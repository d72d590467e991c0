"""Child programs for the supervisor tests, one per mode: ``child.py MODE [ARG]``.

Kept light: only the modes that need it import ``supervisor`` (and with it trio).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

FOREVER_S = 3600.0


def say(text: str) -> None:
    print(text, flush=True)


def on_sigterm_say_and_exit() -> None:
    def handler(signum: int, frame: object) -> None:
        say("TERM")
        sys.exit(0)

    signal.signal(signal.SIGTERM, handler)


def spawn_self(*args: str, pdeathsig: bool = False) -> subprocess.Popen[bytes]:
    preexec: Callable[[], None] | None = None
    if pdeathsig:
        from supervisor import set_parent_death_signal

        preexec = set_parent_death_signal
    # The test children are single-threaded, so preexec_fn is safe here.
    return subprocess.Popen([sys.executable, __file__, *args], preexec_fn=preexec)  # noqa: PLW1509


def sleep() -> None:
    """Say ready, then sleep; the default SIGTERM action ends it."""
    say("ready")
    time.sleep(FOREVER_S)


def crash(code: str) -> None:
    """Log the start time to $START_LOG if set, then exit with ``code`` at once."""
    log = os.environ.get("START_LOG")
    if log:
        with open(log, "a") as file:
            file.write(f"{time.monotonic()}\n")
    sys.exit(int(code))


def crash_when(path: str, code: str) -> None:
    """Wait until ``path`` exists, then exit with ``code``."""
    while not os.path.exists(path):
        time.sleep(0.02)
    sys.exit(int(code))


def announce() -> None:
    """Say TERM on SIGTERM and exit 0."""
    on_sigterm_say_and_exit()
    say("ready")
    time.sleep(FOREVER_S)


def stubborn() -> None:
    """Ignore SIGTERM, and start a grandchild that ignores it too."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    spawn_self("stubborn-leaf")
    say("ready")
    time.sleep(FOREVER_S)


def stubborn_leaf() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(FOREVER_S)


def family(pdeathsig: str = "") -> None:
    """Start a sleeping grandchild (dying with us if ``pdeathsig``), then sleep."""
    spawn_self("leaf", pdeathsig=pdeathsig == "pdeathsig")
    say("ready")
    time.sleep(FOREVER_S)


def leaf() -> None:
    time.sleep(FOREVER_S)


def heartbeat() -> None:
    """Touch the heartbeat every 50 ms and count the beats on stdout."""
    from supervisor import touch_heartbeat

    for beat in range(1_000_000):
        touch_heartbeat()
        if beat % 5 == 0:
            say(f"beat {beat}")
        time.sleep(0.05)


def memory(megabytes: str) -> None:
    """Hold ``megabytes`` MB and start a grandchild holding as much; say TERM on SIGTERM."""
    on_sigterm_say_and_exit()
    block = b"x" * (int(megabytes) * 1024 * 1024)
    spawn_self("memory-leaf", megabytes)
    say(f"holding {len(block)} bytes")
    time.sleep(FOREVER_S)


def memory_leaf(megabytes: str) -> None:
    _block = b"x" * (int(megabytes) * 1024 * 1024)
    time.sleep(FOREVER_S)


def fail_once(marker: str) -> None:
    """Exit 1 the first time (creating ``marker``), 0 after that."""
    if os.path.exists(marker):
        sys.exit(0)
    open(marker, "w").close()
    sys.exit(1)


def env() -> None:
    """Print what the supervisor told us about ourselves, then sleep."""
    heartbeat_file = os.environ.get("SUPERVISOR_HEARTBEAT_FILE", "")
    say(
        f"name={os.environ.get('SUPERVISOR_CHILD_NAME')} "
        f"replica={os.environ.get('SUPERVISOR_REPLICA')} "
        f"heartbeat={os.path.basename(heartbeat_file)} extra={os.environ.get('EXTRA')}"
    )
    time.sleep(FOREVER_S)


def lines() -> None:
    """One line on stdout, one on stderr, one without a line end, then sleep."""
    print("to stdout")
    print("to stderr", file=sys.stderr)
    sys.stdout.write("no newline")
    sys.stdout.flush()
    time.sleep(FOREVER_S)


MODES: dict[str, Callable[..., None]] = {
    "sleep": sleep,
    "crash": crash,
    "crash-when": crash_when,
    "announce": announce,
    "stubborn": stubborn,
    "stubborn-leaf": stubborn_leaf,
    "family": family,
    "leaf": leaf,
    "heartbeat": heartbeat,
    "memory": memory,
    "memory-leaf": memory_leaf,
    "fail-once": fail_once,
    "env": env,
    "lines": lines,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
