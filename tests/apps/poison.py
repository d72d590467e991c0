"""An app with the default 30 s lease and a task that kills its worker process.

With a realistic lease a supervised worker that crashes is restarted and recovers its own
jobs long before the reclaimer would take them back.
"""

from __future__ import annotations

import os

from stem import Stem

app = Stem()


@app.task(name="poison.kill_worker")
async def kill_worker() -> None:
    """A poison job: takes its whole worker process down every time it runs."""
    os._exit(1)


@app.task(name="poison.add")
async def add(a: int, b: int) -> int:
    return a + b
