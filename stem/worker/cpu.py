"""Keep a worker process on one CPU (``stem worker --cpu``).

A worker is one Python process whose threads take turns holding the GIL: the trio
thread, the broker's I/O threads and the thread pool's job threads hand work to each
other several times per job. Spread over several CPUs, each hand-off wakes a thread on
another CPU (an inter-processor interrupt; on a VM, an exit to the hypervisor) that then
waits for the GIL: on the 2-core machine of docs/performance.md (Change 10), a worker
draining one-``INCR`` thread-pool jobs spent about 40% of its CPU in the kernel switching
threads, and 2.5x more jobs per second came out of the same worker kept on one CPU. Only
one thread can run Python at a time anyway, so one CPU is what the worker's own threads
can use; its process-pool children are other processes and go back to every CPU.

``--cpu auto`` (the default) claims a CPU no other stem worker of this user on this
machine holds: an exclusive lock (``lockf``) on ``<tmp>/stem-cpus-<uid>/cpu<N>.lock`` (or under
``$STEM_CPU_LOCK_DIR``), held for
the life of the process (the kernel drops it when the process ends, however it ends),
trying the CPUs least busy over 50 ms first (so workers in containers, which do not see
each other's claims, still tend to spread out).
When every CPU the process may use is claimed (more workers than CPUs), or it may use
only one, the worker is not pinned: the kernel balances oversubscribed processes better
than a fixed choice would. ``--cpu N`` pins to CPU ``N`` without a claim; ``--cpu off``
leaves the kernel to choose. Linux only; elsewhere ``auto`` does nothing and ``N`` is
refused.

Trade-off, documented in docs/reference/cli.md: a pinned worker cannot move away from a
CPU another busy process shares with it, and thread-pool jobs that compute outside the
GIL (compression, numpy) share one CPU, and so do programs a thread-pool task starts
(``subprocess``: they inherit the worker's CPU); use ``--cpu off`` for those, or the
process pool, whose children go back to every CPU.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import NamedTuple

from stem.errors import ConfigError

# fcntl and tempfile are imported where used: a process-pool child imports this module
# for unpin_child only, and keeps its imports small (tests/test_imports.py).

#: Where a process-pool child finds the CPUs its worker could use before it was pinned.
CHILD_CPUS_ENV = "STEM_CHILD_CPUS"

_held: list[int] = []  # the claim's lock file descriptor, open for the process's life


class CpuChoice(NamedTuple):
    """What ``--cpu`` did: the CPU the worker runs on (``None``: not pinned), and why."""

    cpu: int | None
    why: str

    def __str__(self) -> str:
        return self.why


def parse_cpu(value: str) -> str | int:
    """``"auto"``, ``"off"`` or a CPU number; anything else is one clear error."""
    text = value.strip().lower()
    if text in ("auto", "off"):
        return text
    if text.isdigit():
        return int(text)
    raise ConfigError(f"--cpu {value!r}: give auto, off or a CPU number such as 0")


def _can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


#: Where the claims live instead of the default (e.g. a directory containers share).
LOCK_DIR_ENV = "STEM_CPU_LOCK_DIR"


def lock_dir() -> Path:
    """The directory of CPU claims: ``$STEM_CPU_LOCK_DIR``, else one per user under the
    system's temporary directory."""
    import tempfile

    if os.environ.get(LOCK_DIR_ENV):
        return Path(os.environ[LOCK_DIR_ENV])
    return Path(tempfile.gettempdir()) / f"stem-cpus-{os.getuid()}"


def claim_cpu(cpus: list[int], folder: Path) -> int | None:
    """Claim the first CPU of ``cpus``, in that order, that no other process holds;
    ``None`` when all are held. The claim lasts while this process lives."""
    import fcntl

    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for cpu in cpus:
        fd = os.open(folder / f"cpu{cpu}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # A POSIX record lock: held by this process alone, so a child it forks (a
            # task calling os.fork) does not keep the CPU claimed after the worker ends.
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):  # another process holds it
                continue
            raise
        _held.append(fd)
        return cpu
    return None


def idlest_first(cpus: list[int], sample_s: float = 0.05) -> list[int]:
    """``cpus`` from the least busy over the next ``sample_s`` seconds (ties in random
    order): workers that cannot see each other's claims (containers with their own
    temporary directory) then still tend to spread over the machine's CPUs."""
    import random

    import psutil

    try:
        busy = psutil.cpu_percent(interval=sample_s, percpu=True)
    except (OSError, RuntimeError):  # no /proc/stat to read: keep a random order
        busy = []
    order = random.sample(cpus, len(cpus))
    return sorted(order, key=lambda c: busy[c] if c < len(busy) else 0.0)


def _pin_process(cpus: set[int]) -> None:
    """Move every thread of this process to ``cpus`` (threads made later inherit it)."""
    tids = (
        [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    )
    for tid in tids:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


def pin_worker(spec: str | int, folder: Path | None = None) -> CpuChoice:
    """Apply ``--cpu`` to this process (see the module doc); call before trio starts."""
    if spec == "off":
        return CpuChoice(None, "off")
    if not _can_pin():
        if spec == "auto":
            return CpuChoice(None, "not pinned: this platform cannot pin threads")
        raise ConfigError(f"--cpu {spec}: this platform cannot pin a process to a CPU")
    allowed = sorted(os.sched_getaffinity(0))
    os.environ[CHILD_CPUS_ENV] = ",".join(map(str, allowed))
    if spec != "auto":
        if spec not in allowed:
            listed = ",".join(map(str, allowed))
            raise ConfigError(f"--cpu {spec}: this process may only run on CPUs {listed}")
        try:
            _pin_process({int(spec)})
        except OSError as exc:
            raise ConfigError(f"--cpu {spec}: cannot pin to it: {exc.strerror or exc}") from None
        return CpuChoice(int(spec), f"pinned to CPU {spec}")
    if len(allowed) < 2:
        return CpuChoice(None, "not pinned: one CPU")
    try:
        cpu = claim_cpu(idlest_first(allowed), folder or lock_dir())
    except OSError as exc:
        return CpuChoice(None, f"not pinned: cannot claim a CPU ({exc.strerror or exc})")
    if cpu is None:
        return CpuChoice(None, f"not pinned: all {len(allowed)} CPUs claimed by other workers")
    try:
        _pin_process({cpu})
    except OSError as exc:  # e.g. a seccomp or cgroup refusal: run unpinned, say why
        with contextlib.suppress(OSError):  # threads pinned before the refusal go back
            _pin_process(set(allowed))
        os.close(_held.pop())  # and the CPU is not kept from other workers
        return CpuChoice(None, f"not pinned: cannot pin to CPU {cpu} ({exc.strerror or exc})")
    return CpuChoice(cpu, f"pinned to CPU {cpu}")


def unpin_child() -> None:
    """In a process-pool child: go back to the CPUs the worker had before it was pinned."""
    listed = os.environ.get(CHILD_CPUS_ENV)
    if not listed or not _can_pin():
        return
    with contextlib.suppress(ValueError, OSError):  # a CPU gone offline: stay where we are
        os.sched_setaffinity(0, {int(c) for c in listed.split(",")})
