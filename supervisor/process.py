"""One child process in its own session, and how to stop it with everything it started.

``spawn()`` starts a command in a new session (so its pid is also its process-group id)
with its stdout and stderr on pipes, and on Linux with ``PR_SET_PDEATHSIG`` = SIGKILL so it
dies if the supervisor is SIGKILLed. ``stop_group()`` sends SIGTERM to the whole group,
waits until the child is reaped and no live process is left in the group, and sends SIGKILL
after the stop timeout.

Why not ``trio.lowlevel.open_process``: it calls ``Popen`` from a worker thread, and Linux
sends the parent-death signal when the *thread* that forked the child exits, so children
would be killed whenever trio retires an idle worker thread. ``spawn()`` is synchronous and
must be called from the thread that runs trio (which should be the main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

import psutil
import trio

_PR_SET_PDEATHSIG = 1
_GROUP_POLL_S = 0.05
# SIGKILL cannot be ignored, so this only bounds the wait for processes stuck in the kernel.
_KILL_SETTLE_S = 2.0


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


# Resolved at import so that a forked child never has to load a library before exec.
_prctl = _load_prctl()


def set_parent_death_signal(sig: int = signal.SIGKILL, *, parent_pid: int | None = None) -> None:
    """Have Linux send ``sig`` to this process when the thread that created it exits.

    Meant for a child program that starts children of its own, e.g.
    ``subprocess.Popen(argv, preexec_fn=supervisor.set_parent_death_signal)``, so that they
    die with it. With ``parent_pid``, a parent that already died before the call is
    detected and ``sig`` is sent at once. A no-op on other systems.

    Raises ``OSError`` if the kernel refuses the request.
    """
    if _prctl is None:
        return
    if _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


class ChildProcess:
    """A running child that leads its own process group (``pgid == pid``).

    ``stdout`` and ``stderr`` are trio streams on the child's pipes. Call ``aclose()`` once
    the child has been reaped to close them. ``wait()`` may be called from several tasks.
    """

    def __init__(self, popen: subprocess.Popen[bytes], stdout_fd: int, stderr_fd: int) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.stdout = trio.lowlevel.FdStream(stdout_fd)
        self.stderr = trio.lowlevel.FdStream(stderr_fd)
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(self.pid)
        self._reaping: trio.Event | None = None
        self._group_gone = False

    @property
    def returncode(self) -> int | None:
        """None while running; the exit code, or ``-signal`` if killed by a signal."""
        return self._popen.returncode

    async def wait(self) -> int:
        """Wait until the child exits and reap it; return its ``returncode``."""
        while self._popen.returncode is None:
            if self._reaping is not None:
                # Another task is waiting; it wakes us when it is done or cancelled.
                await self._reaping.wait()
                continue
            self._reaping = trio.Event()
            try:
                await self._wait_for_exit()
            finally:
                self._reaping.set()
                self._reaping = None
        return self._popen.returncode

    async def _wait_for_exit(self) -> None:
        if self._pidfd is not None:
            await trio.lowlevel.wait_readable(self._pidfd)
            self._popen.wait()
            return
        while self._popen.poll() is None:
            await trio.sleep(_GROUP_POLL_S)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to every process in the child's group; quiet if the group is gone."""
        if self._group_gone:
            return  # the pgid may belong to someone else by now
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def wait_group_gone(self) -> None:
        """Wait until the child is reaped and its group has no live (non-zombie) process."""
        await self.wait()
        while _group_has_live_member(self.pid):
            await trio.sleep(_GROUP_POLL_S)
        self._group_gone = True

    def strays(self) -> list[psutil.Process]:
        """Descendants that left the child's process group (only findable while it runs)."""
        if self.returncode is not None:
            return []  # reaped: the pid may already belong to an unrelated process
        try:
            found = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        return [p for p in found if _pgid(p.pid) not in (None, self.pid)]

    async def aclose(self) -> None:
        """Close the pipes and the pidfd. Call after the child was reaped."""
        await self.stdout.aclose()
        await self.stderr.aclose()
        if self._pidfd is not None and self._reaping is None:
            trio.lowlevel.notify_closing(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


def spawn(argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None) -> ChildProcess:
    """Start ``argv`` in a new session with piped output; stdin is ``/dev/null``.

    Raises ``OSError`` (e.g. ``FileNotFoundError``) when the command cannot be started; no
    process or file descriptor is left behind then.
    """
    parent = os.getpid()

    def before_exec() -> None:
        set_parent_death_signal(signal.SIGKILL, parent_pid=parent)

    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        popen = subprocess.Popen(  # noqa: S603  (argv the operator configured, no shell)
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            # Only a pre-resolved prctl call runs between fork and exec; glibc's malloc is
            # fork-safe and the GIL is ours, so threads in the parent do not matter here.
            preexec_fn=before_exec if _prctl is not None else None,  # noqa: PLW1509
        )
    except subprocess.SubprocessError as exc:  # raised when preexec_fn failed
        os.close(out_r)
        os.close(err_r)
        raise OSError(f"cannot start {argv[0]!r}: {exc}") from exc
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return ChildProcess(popen, out_r, err_r)


async def stop_group(proc: ChildProcess, stop_timeout_s: float) -> None:
    """Stop the child and its whole process group, escalating to SIGKILL.

    Sends SIGTERM then SIGCONT (a stopped process cannot act on SIGTERM otherwise) to the
    group and to descendants that left it, waits up to ``stop_timeout_s`` for the child to
    be reaped and the group to empty, then sends SIGKILL. Safe to call after the child
    exited (it then cleans up what the child left behind) and from several tasks at once.
    If cancelled, the signals already sent stay sent.
    """
    strays = proc.strays()
    for sig in (signal.SIGTERM, signal.SIGCONT):
        proc.signal_group(sig)
        _signal_all(strays, sig)
    with trio.move_on_after(stop_timeout_s):
        await proc.wait_group_gone()
        await _wait_all_gone(strays)
        return
    await kill_group(proc, strays)


async def kill_group(proc: ChildProcess, strays: Sequence[psutil.Process] = ()) -> None:
    """SIGKILL the child's group (and ``strays``) and wait until the child is reaped."""
    proc.signal_group(signal.SIGKILL)
    _signal_all(strays, signal.SIGKILL)
    await proc.wait()
    with trio.move_on_after(_KILL_SETTLE_S):
        await proc.wait_group_gone()


def _signal_all(processes: Sequence[psutil.Process], sig: int) -> None:
    for process in processes:
        # psutil refuses to signal a pid that was reused by another process.
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


async def _wait_all_gone(processes: Sequence[psutil.Process]) -> None:
    for process in processes:
        while _alive(process):
            await trio.sleep(_GROUP_POLL_S)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _group_has_live_member(pgid: int) -> bool:
    """True if any non-zombie process is in group ``pgid``.

    ``killpg(pgid, 0)`` alone also counts zombies, and orphaned zombies can linger where
    pid 1 is slow to reap them; on Linux, /proc tells them apart.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    return any(_proc_stat(entry) == (pgid, True) for entry in os.listdir("/proc"))


def _proc_stat(entry: str) -> tuple[int, bool] | None:
    """(pgid, alive) of a /proc entry, or None if it is not a readable process."""
    if not entry.isdigit():
        return None
    try:
        with open(f"/proc/{entry}/stat", "rb") as stat:
            data = stat.read()
    except OSError:
        return None
    # Fields after the parenthesised command name: state ppid pgrp ...
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[2]), fields[0] not in (b"Z", b"X")
