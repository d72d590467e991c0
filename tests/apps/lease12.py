"""A test app with a 12 s lease, for the partition tests (``tests.apps.lease12:app``).

With a 12 s lease the keeper renews every 3 s with a 2 s deadline, so the stated
survivable partition is 12 - 3 - 2.5 - 0.5 = 6 s (see ``stem.worker.lease.LeaseTiming``).
"""

from __future__ import annotations

from pathlib import Path

import trio

from stem import Stem

app = Stem(lease_s=12.0)


@app.task
async def arecord(path: str, token: str, seconds: float = 0.0) -> str:
    """Append ``token`` to ``path`` (counts executions across processes), then sleep."""
    with Path(path).open("a") as fh:
        fh.write(token + "\n")
    await trio.sleep(seconds)
    return token
