"""The chaos suite's task app (``chaos.jobs:app``): every run is written to a ledger.

The ledger lives outside stem: a plain file (``$CHAOS_LEDGER``) that each run appends one
line to (``<job id>\\n``, one ``write`` on an ``O_APPEND`` file, so lines from many
processes never interleave). A run is recorded before the task returns, so a job whose
worker dies after the append and before the settle is counted again when it reruns: that
is the duplicate the checker counts. A file, not Redis, because the Redis under test is
restarted, filled up and cut off by the scenarios; the ledger must not be.

``$CHAOS_RESULT_TTL_S`` sets how long settled records are kept (the soak's is short).
``$CHAOS_LEASE_S`` sets the lease (default 12 s: the keeper renews every 3 s and survives
a 6 s partition, see ``stem.worker.lease.LeaseTiming``). The beat scenario adds a schedule
through :mod:`chaos.beat_app`, so that workers of this app fire nothing.
"""

from __future__ import annotations

import os

import trio

from stem import Stem, current_job

#: The lease scenarios run with unless they set ``$CHAOS_LEASE_S``.
DEFAULT_LEASE_S = 12.0

app = Stem(
    lease_s=float(os.environ.get("CHAOS_LEASE_S", DEFAULT_LEASE_S)),
    max_deliveries=int(os.environ.get("CHAOS_MAX_DELIVERIES", "20")),
    # The soak keeps records briefly, so Redis reaches a steady size (chaos.soak).
    result_ttl_s=int(os.environ.get("CHAOS_RESULT_TTL_S", str(7 * 86_400))),
)


def record_run() -> None:
    """Append the running job's id to the ledger file (no-op without ``$CHAOS_LEDGER``)."""
    path = os.environ.get("CHAOS_LEDGER")
    if not path:
        return
    line = (current_job().job_id + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.task(max_retries=50, backoff_base_s=0.2, backoff_cap_s=1.0)
async def run(seconds: float = 0.0) -> str:
    """Record this run, then sleep ``seconds`` (a job that holds its lease for a while)."""
    record_run()
    await trio.sleep(seconds)
    return current_job().job_id
