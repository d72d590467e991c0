"""The producer: enqueues jobs through the proxy from a thread and records every answer.

Each job gets an id chosen here (``job_id=``), so when ``enqueue`` raises, the checker
can still ask Redis whether that job was written anyway (a reply lost on the way back).
Nothing is retried: what the caller was told is exactly what is recorded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from stem import Stem
from stem.envelope import new_job_id

TASK = "chaos.jobs.run"


@dataclass(frozen=True, slots=True)
class Sent:
    """One ``enqueue``: the id it chose, and the error if the call raised."""

    job_id: str
    error: BaseException | None
    at: float  # time.monotonic() when the call returned


@dataclass
class Producer:
    """Enqueue ``total`` jobs of ``seconds`` each at ``rate_per_s`` from a daemon thread.

    ``start()`` starts the thread, ``join()`` waits for it (bounded: the thread stops after
    ``total`` calls, each bounded by the client's socket timeout). ``sent`` is the record.
    """

    app: Stem
    total: int
    rate_per_s: float
    seconds: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Producer:
        self._thread = threading.Thread(target=self._run, name="chaos-producer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float = 120.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise TimeoutError(f"the producer is still enqueueing after {timeout_s:.0f} s")

    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _run(self) -> None:
        start = time.monotonic()
        for i in range(self.total):
            if self._stop.is_set():
                return
            pause = start + i / self.rate_per_s - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)  # pacing, not synchronisation
            self.sent.append(enqueue_one(self.app, self.seconds))


def enqueue_one(app: Stem, seconds: float = 0.0, priority: int | None = None) -> Sent:
    """One ``enqueue`` with a chosen id; the outcome as a :class:`Sent`."""
    job_id = new_job_id()
    try:
        app.enqueue(TASK, (seconds,), job_id=job_id, priority=priority)
    except Exception as exc:
        return Sent(job_id, exc, time.monotonic())
    return Sent(job_id, None, time.monotonic())
