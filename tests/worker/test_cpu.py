"""A worker keeps its threads on one CPU (``--cpu``, docs/performance.md Change 10).

Every case runs real processes and reads their affinity from the kernel; claims live in
the test's own directory (``STEM_CPU_LOCK_DIR``), so other tests' workers do not matter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from stem import Stem
from tests.apps import jobs
from tests.security.servers import run_stem
from tests.worker.conftest import start_worker, wait_until
from tests.worker.test_pool_children import pool_children

ALLOWED = sorted(os.sched_getaffinity(0))

#: Holds a claim from ``cpus`` (tried in order) and prints the CPU (or None) until its
#: stdin closes.
HOLDER = """
import sys
from pathlib import Path
from stem.worker.cpu import claim_cpu
print(claim_cpu([int(c) for c in sys.argv[1].split(",")], Path(sys.argv[2])), flush=True)
sys.stdin.read()
"""


def holder(cpus: str, folder: Path, root: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, cpus, str(folder)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def release(proc: subprocess.Popen[str]) -> None:
    """End a holder: close its stdin (or reap it if it was killed) and its pipes."""
    proc.communicate(timeout=30)


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own claims directory, for the workers it starts."""
    monkeypatch.setenv("STEM_CPU_LOCK_DIR", str(tmp_path))
    return tmp_path


def thread_cpus(pid: int) -> set[frozenset[int]]:
    """The affinity of every thread of process ``pid``."""
    return {frozenset(os.sched_getaffinity(t.id)) for t in psutil.Process(pid).threads()}


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_each_process_claims_a_cpu_no_other_holds_and_a_dead_ones_cpu_is_free_again(
    tmp_path: Path, repo_root: Path
) -> None:
    first, cpu_a = holder("3,5", tmp_path, repo_root)
    second, cpu_b = holder("3,5", tmp_path, repo_root)
    third, cpu_c = holder("3,5", tmp_path, repo_root)
    try:
        assert (cpu_a, cpu_b, cpu_c) == ("3", "5", "None")
        first.kill()  # however it ends, the kernel drops its lock
        release(first)
        fourth, cpu_d = holder("3,5", tmp_path, repo_root)
        assert cpu_d == "3"
        release(fourth)
    finally:
        for proc in (first, second, third):
            if proc.returncode is None:
                release(proc)


def test_a_worker_runs_every_thread_on_one_cpu_and_its_pool_children_on_them_all(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    claims: Path,
    strays: list[psutil.Process],
) -> None:
    worker = start_worker(redis_url, namespace, repo_root, "--pool", "processes", "-c", "2")
    try:
        handles = [jobs.sync_add.enqueue(i, 1) for i in range(4)]
        assert [h.result(timeout_s=60) for h in handles] == [1, 2, 3, 4]
        children = pool_children(worker.pid)
        strays.extend(children)
        assert children
        pinned = thread_cpus(worker.pid)
        if len(ALLOWED) >= 2:  # one CPU, the one whose claim the worker holds
            assert len(pinned) == 1
            (cpus,) = pinned
            assert len(cpus) == 1 and next(iter(cpus)) in ALLOWED
            assert [p.name for p in claims.iterdir()] == [f"cpu{next(iter(cpus))}.lock"]
        else:  # nothing to choose from: left where it was
            assert pinned == {frozenset(ALLOWED)}
        for child in children:
            assert sorted(child.cpu_affinity()) == ALLOWED
    finally:
        stop(worker)


def test_two_workers_on_one_machine_claim_different_cpus(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    claims: Path,
) -> None:
    workers = [start_worker(redis_url, namespace, repo_root, name=f"w{i}") for i in range(2)]
    try:
        handles = [jobs.add.enqueue(i, 1) for i in range(20)]
        assert [h.result(timeout_s=60) for h in handles] == list(range(1, 21))
        if len(ALLOWED) >= 2:  # both have claimed (pinning comes before they fetch)
            wait_until(lambda: len(list(claims.iterdir())) == 2, what="two claims")
        seen = [thread_cpus(w.pid) for w in workers]
        if len(ALLOWED) >= 2:
            assert all(len(s) == 1 and len(next(iter(s))) == 1 for s in seen)
            assert seen[0] != seen[1]
        else:
            assert seen == [{frozenset(ALLOWED)}] * 2
    finally:
        for w in workers:
            stop(w)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("banana", "--cpu 'banana': give auto, off or a CPU number such as 0"),
        ("4096", "--cpu 4096: this process may only run on CPUs " + ",".join(map(str, ALLOWED))),
    ],
)
def test_a_bad_cpu_is_one_line_and_a_nonzero_exit(
    redis_url: str, namespace: str, value: str, message: str
) -> None:
    done = run_stem("--redis-url", redis_url, "--namespace", namespace,
                    "--app", "tests.apps.jobs:app", "worker", "--cpu", value)  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [f"stem: error: {message}"]


def test_cpu_off_leaves_the_worker_where_the_kernel_puts_it(
    japp: Stem,
    redis_url: str,
    namespace: str,
    repo_root: Path,
    claims: Path,
) -> None:
    worker = start_worker(redis_url, namespace, repo_root, "--cpu", "off")
    try:
        assert jobs.add.enqueue(1, 2).result(timeout_s=60) == 3
        assert thread_cpus(worker.pid) == {frozenset(ALLOWED)}
        assert list(claims.iterdir()) == []
    finally:
        stop(worker)


def test_supervise_passes_cpu_off_to_its_workers_and_refuses_one_cpu_for_them_all(
    tmp_path: Path,
) -> None:
    from stem.errors import ConfigError
    from stem.supervise import SuperviseOptions, build_specs, options_from_file

    url = "redis://127.0.0.1:1/0"
    (auto,) = build_specs(SuperviseOptions("a:b", beat=False, reclaimer=False), url)[0]
    assert "--cpu" not in auto.argv  # each worker claims its own
    config = tmp_path / "stem.toml"
    config.write_text('[supervise]\napp_spec = "a:b"\ncpu = "off"\nbeat = false\n')
    options = options_from_file(config, {"reclaimer": False})
    (off,) = build_specs(options, url)[0]
    assert off.argv[-2:] == ("--cpu", "off")
    with pytest.raises(ConfigError, match="cpu must be 'auto' or 'off'"):
        SuperviseOptions("a:b", cpu="3")


def test_auto_tries_the_least_busy_cpus_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    from stem.worker.cpu import idlest_first

    monkeypatch.setattr(psutil, "cpu_percent", lambda **_: [90.0, 5.0, 50.0, 0.0])
    assert idlest_first([0, 1, 2, 3]) == [3, 1, 2, 0]
    assert idlest_first([0, 2]) == [2, 0]
