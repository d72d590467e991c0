"""The repo's Procfile under a real Procfile runner (honcho): a stop reports stem's exit 0.

honcho runs each line with ``sh -c`` in a session of its own and, on SIGTERM or SIGINT,
sends SIGTERM to each session. Without ``exec`` the shell died of that signal and honcho
reported ``rc=-15`` while stem itself stopped cleanly; with ``exec`` stem is the process
honcho waits for. Each test runs the Procfile's lines as written, pointed at the test's
Redis and namespace through ``STEM_REDIS_URL`` and ``STEM_NAMESPACE``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from stem import Stem
from supervisor import HEARTBEAT_FILE_ENV
from tests.processes import alive
from tests.worker.conftest import wait_until

#: A commented-out process type of the Procfile (``# worker: exec stem ...``).
_ALTERNATIVE = re.compile(r"^# (\w+: (?:exec )?stem .*)$")


def honcho(
    procfile: Path, root: Path, tmp_path: Path, redis_url: str, namespace: str
) -> subprocess.Popen[str]:
    """``honcho start`` on ``procfile`` from ``root``, with the venv's ``stem`` on PATH."""
    empty_env = tmp_path / "empty.env"  # not the developer's .env
    empty_env.write_text("")
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "PYTHONPATH": str(root),
        "STEM_REDIS_URL": redis_url,
        "STEM_NAMESPACE": namespace,
        "STEM_SUPERVISE_DATA_DIR": str(tmp_path / ".stem"),  # not the checkout's .stem
    }
    argv = [sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(root)]
    argv += ["-e", str(empty_env), "--no-colour", "--no-prefix", "start"]
    return subprocess.Popen(
        argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def stem_processes(runner: subprocess.Popen[str]) -> list[psutil.Process]:
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for p in psutil.Process(runner.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if any(_is_stem(arg) for arg in p.cmdline()):
                    found.append(p)
    return found


def _is_stem(arg: str) -> bool:
    """``stem`` (the script), ``-m stem``, ``stem.worker.child``: not a path with stem in it."""
    return os.path.basename(arg) == "stem" or arg.startswith("stem.")


def run_and_stop(
    runner: subprocess.Popen[str],
    ready: Callable[[], bool],
    types: list[str],
    sig: signal.Signals,
    seen: list[psutil.Process],
) -> tuple[int, str]:
    """Once ``ready()`` (every actor's loop turns, its signal handlers set: a signal
    before that is Python's default death), send ``sig`` to honcho; its code and output."""
    try:
        wait_until(ready, what="every process type to be running under honcho")
        # Each type's process, and whatever they started (the supervisor's actors).
        wait_until(lambda: len(stem_processes(runner)) >= len(types), what="every type")
        seen.extend(stem_processes(runner))
        os.kill(runner.pid, sig)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.communicate()
    return runner.returncode, output


def stopped_codes(output: str, sig: signal.Signals) -> dict[str, str]:
    """What honcho reported per process after it got ``sig``: ``stem.1 stopped (rc=0)``
    -> ``{"stem.1": "0"}``; a process that stopped before the signal is a failure."""
    received = output.index(f"{sig.name} received")
    assert " stopped (rc=" not in output[:received], output
    return dict(re.findall(r"(\S+) stopped \(rc=(-?\d+)\)", output))


def test_the_procfile_s_process_type_reports_exit_code_0_when_honcho_gets_sigterm(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    strays: list[psutil.Process],
) -> None:
    procfile = repo_root / "Procfile"
    runner = honcho(procfile, repo_root, tmp_path, redis_url, namespace)

    def ready() -> bool:  # the supervisor's worker heartbeats once the supervisor runs
        return bool(japp.broker.workers())

    code, output = run_and_stop(runner, ready, ["stem"], signal.SIGTERM, strays)

    assert stopped_codes(output, signal.SIGTERM) == {"stem.1": "0"}, output
    assert code == 143  # honcho's own code for "stopped by SIGTERM"
    assert alive(strays) == []


def test_the_procfile_s_per_actor_process_types_report_exit_code_0_on_ctrl_c(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    tmp_path: Path,
    strays: list[psutil.Process],
) -> None:
    lines = (repo_root / "Procfile").read_text().splitlines()
    alternatives = [m[1] for ln in lines if (m := _ALTERNATIVE.match(ln))]
    types = [ln.split(":", 1)[0] for ln in alternatives]
    assert types == ["worker", "reclaimer", "ratelimit", "beat"]
    # Each line as written, plus the heartbeat file that its actor's loop touches once
    # it runs (the one stem supervise hands its children).
    beats = {t: tmp_path / f"{t}.beat" for t in types}
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "".join(
            f"{t}: {HEARTBEAT_FILE_ENV}={beats[t]} {line.split(': ', 1)[1]}\n"
            for t, line in zip(types, alternatives, strict=True)
        )
    )
    runner = honcho(procfile, repo_root, tmp_path, redis_url, namespace)

    def ready() -> bool:
        return all(b.exists() for b in beats.values())

    code, output = run_and_stop(runner, ready, types, signal.SIGINT, strays)

    assert stopped_codes(output, signal.SIGINT) == {f"{t}.1": "0" for t in types}, output
    assert code == 130  # honcho's own code for "stopped by SIGINT"
    assert alive(strays) == []
