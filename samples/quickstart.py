"""The quick-start app that ``python3 dev.py run`` supervises.

Run the whole stack (embedded Redis, a worker, the reclaimer and beat)::

    stem supervise --app samples.quickstart:app --config samples/stem.toml

then, from another shell in the same folder, enqueue and wait::

    stem --app samples.quickstart:app enqueue samples.quickstart.add --args '[2, 3]'
    python -m samples.produce
"""

from __future__ import annotations

import hashlib
import logging

import trio

import stem

app = stem.Stem()
log = logging.getLogger("stem.samples")


@app.task
async def add(a: int, b: int) -> int:
    """An async task: runs as a trio task inside the worker."""
    return a + b


@app.task(max_retries=5, backoff_base_s=0.5)
async def fetch_report(report_id: int) -> dict[str, object]:
    """Pretends to call a flaky service: the first attempt fails, the retry succeeds."""
    job = stem.current_job()
    if job.attempt == 0:
        raise ConnectionError(f"report service unavailable for {report_id} (attempt 0)")
    await trio.sleep(0.05)
    return {"report": report_id, "attempt": job.attempt, "job": job.job_id}


@app.task(time_limit_s=10)
def checksum(text: str, rounds: int = 10_000) -> str:
    """A CPU-bound sync task: runs in a pool child process, killed past 10 s."""
    digest = text.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


@app.task(keep_result_s=0)
def tick(label: str) -> str:
    """What the schedule in samples/stem.toml enqueues every few seconds. Nobody reads
    its result, so nothing of a tick stays in Redis once it ran (``keep_result_s=0``)."""
    log.info("tick from %s", label)
    return label
