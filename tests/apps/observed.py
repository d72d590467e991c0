"""Tasks for the observability tests: they log, print and fail (tests.apps.observed:app)."""

from __future__ import annotations

import logging

from stem import RetryPolicy, Stem

app = Stem(retry=RetryPolicy(max_retries=1, backoff_base_s=0.01, backoff_cap_s=0.01))

log = logging.getLogger("tests.apps.observed")


@app.task
def chatty(word: str) -> str:
    """Logs and prints from a pool child."""
    log.info("child says %s", word)
    print(f"printed {word}")
    return word


@app.task(pool="threads")
def fails() -> None:
    """Always fails: retried once, then dead-lettered."""
    raise ValueError("always")


@app.task(pool="threads", log_events=False)
def quiet() -> int:
    """A chatty task whose job events are not logged."""
    return 1


@app.task
async def waits() -> None:
    """Runs until it is revoked (or a minute passes)."""
    import trio

    await trio.sleep(60)
