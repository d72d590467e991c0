"""Tasks the worker tests run (importable by process-pool children as tests.apps.jobs:app).

The app is module-level so pool children can import it; tests point it at their own
Redis namespace with ``app.connect(url, namespace=...)``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio

import stem
from stem import RetryPolicy, Stem

app = Stem(lease_s=1.0, retry=RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_cap_s=0.05))


@app.task
async def add(a: int, b: int) -> int:
    return a + b


@app.task
async def noop() -> None:
    return None


@app.task
def sync_add(a: int, b: int) -> int:
    return a + b


@app.task(pool="threads")
def thread_add(a: int, b: int) -> int:
    return a + b


@app.task
def whoami() -> dict[str, object]:
    job = stem.current_job()
    return {"id": job.job_id, "attempt": job.attempt, "pid": os.getpid()}


@app.task
def flaky(fail_times: int) -> int:
    attempt = stem.current_job().attempt
    if attempt < fail_times:
        raise ValueError(f"attempt {attempt} fails")
    return attempt


@app.task(max_retries=5, dont_retry_on=(KeyError,))
def never_retry_keyerror() -> None:
    raise KeyError("nope")


@app.task(pool="threads", max_retries=5, dont_retry_on=(KeyError,))
def thread_never_retry_keyerror() -> None:
    raise KeyError("nope")


@app.task(max_retries=1)
def asks_for_retry() -> int:
    if stem.current_job().attempt == 0:
        raise stem.Retry(delay_s=0.2)
    return stem.current_job().attempt


@app.task(time_limit_s=1.0)
def spin() -> None:
    while True:
        pass


@app.task(soft_time_limit_s=0.3, time_limit_s=5.0)
def soft_limited() -> str:
    try:
        time.sleep(3)
    except stem.SoftTimeLimitExceeded:
        return "cleaned up"
    return "not interrupted"


@app.task(pool="threads", soft_time_limit_s=0.3, time_limit_s=20.0)
def thread_soft_limited() -> str:
    """Short sleeps: the soft limit's exception reaches a thread between two of them."""
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except stem.SoftTimeLimitExceeded as exc:
        return f"cleaned up: {exc}"
    return "not interrupted"


@app.task
def record(path: str, token: str, seconds: float = 0.0) -> str:
    """Append ``token`` to ``path`` (counts executions across processes), then sleep."""
    with open(path, "a") as fh:
        fh.write(token + "\n")
    time.sleep(seconds)
    return token


def _gated(path: str, token: str, gate: str) -> str:
    with open(path, "a") as fh:
        fh.write(f"{token} {os.getpid()}\n")
    deadline = time.monotonic() + 120  # a test that never opens the gate ends it anyway
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(path, "a") as fh:
        fh.write(f"{token}:done {os.getpid()}\n")
    return token


@app.task
def gated(path: str, token: str, gate: str) -> str:
    """Append ``token pid`` to ``path``, wait until the file ``gate`` exists, then append
    ``token:done pid``: a sync job that runs for exactly as long as a test wants."""
    return _gated(path, token, gate)


@app.task(pool="threads")
def thread_gated(path: str, token: str, gate: str) -> str:
    """:func:`gated` in the thread pool."""
    return _gated(path, token, gate)


@app.task
async def ledger(path: str, seconds: float = 0.0) -> None:
    """Append this job's queue and id to ``path`` (one line per run, across processes),
    then sleep ``seconds``."""
    job = stem.current_job()
    with Path(path).open("a") as fh:
        fh.write(f"{job.queue} {job.job_id}\n")
    await trio.sleep(seconds)


@app.task
async def arecord(path: str, token: str, seconds: float = 0.0) -> str:
    with Path(path).open("a") as fh:
        fh.write(token + "\n")
    await trio.sleep(seconds)
    return token


@app.task
async def blocks_loop(path: str, token: str, seconds: float) -> str:
    """An async task that wrongly blocks the event loop (time.sleep)."""
    with open(path, "a") as fh:
        fh.write(token + "\n")
    time.sleep(seconds)
    return token


@app.task
def crash_child() -> None:
    os._exit(3)


@app.task
def bad_result() -> object:
    return {1, 2}
