"""Limits across every worker: a shared API rate, a per-tenant rate, a lock per account.

Run the stack with the rate limiter (it releases throttled jobs)::

    stem supervise --app samples.limits:app --workers 2     # runs a rate limiter too
    # or as separate processes:
    stem --app samples.limits:app worker
    stem --app samples.limits:app ratelimit

then enqueue a burst and watch it drain at the limits::

    python -m samples.limits
    stem --app samples.limits:app limit list
    stem limit set payments-api --rate 10/s      # every worker obeys within a second
    stem observe queues                          # THROTTLED, and LIMITER up or missing
"""

from __future__ import annotations

import os
import time

import trio

import stem

app = stem.Stem()

#: Everything that calls the payments API shares one budget, across every worker.
app.limit("payments-api", rate="5/s")


@app.task(name="charge", rate_limit="2/s", limit_key="{tenant}", limits=["payments-api"])
async def charge(tenant: str, cents: int) -> float:
    """At most 2 charges a second per tenant, 5 a second in all: a busy tenant cannot
    use up the shared budget of the others (tenants are served round-robin)."""
    return time.time()


@app.task(name="sync_account", lock="sync:{account_id}")
async def sync_account(account_id: int) -> str:
    """Never two syncs of one account at once; different accounts run side by side."""
    await trio.sleep(0.2)
    return f"synced {account_id}"


def main() -> None:
    """Enqueue a burst, wait for it, print how fast it really ran."""
    url = os.environ.get("STEM_REDIS_URL")
    if url:
        app.connect(url, namespace=os.environ.get("STEM_NAMESPACE") or None)
    charges = charge.enqueue_many([("big", 100)] * 8 + [("small", 100)] * 2)
    syncs = sync_account.enqueue_many([(1,), (1,), (2,)])
    started = [h.result(timeout_s=60) for h in charges]
    print(*(h.result(timeout_s=60) for h in syncs), sep="\n")
    span = max(started) - min(started)
    print(f"10 charges started over {span:.1f} s (limit: 5/s in all, 2/s per tenant)")


if __name__ == "__main__":
    main()
