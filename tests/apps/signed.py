"""Tasks of the signing tests (``tests.apps.signed:app``): each records its runs in a file.

The app takes its keys from ``$STEM_SIGNING_KEYS``/``$STEM_SIGNING_KEY_ID``, so one module
serves workers with different keys (each test starts workers with its own environment).
"""

from __future__ import annotations

import time
from pathlib import Path

import stem
from stem import RetryPolicy, Stem

app = Stem(lease_s=1.0, retry=RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_cap_s=0.05))


@app.task(pool="threads")
def record(path: str, token: str, seconds: float = 0.0) -> str:
    """Append ``token`` to ``path`` (one line per run, across processes), then sleep."""
    with Path(path).open("a") as fh:
        fh.write(token + "\n")
    time.sleep(seconds)
    return token


@app.task(pool="threads")
def fails(path: str, token: str) -> str:
    """Record the run and raise: dead-lettered once its retries are spent."""
    with Path(path).open("a") as fh:
        fh.write(token + "\n")
    raise ValueError("always fails")


@app.task(pool="threads")
def fails_once(path: str, token: str) -> str:
    """Record the run; raise on the first attempt, so the job is retried once."""
    with Path(path).open("a") as fh:
        fh.write(token + "\n")
    if stem.current_job().attempt == 0:
        raise ValueError("first attempt fails")
    return token
