"""``JobHandle``: what ``enqueue`` returns, to ask about a job and wait for its result."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stem._async import in_thread
from stem.errors import JobFailed, JobNotFound, JobRevoked, PayloadError, ResultTimeout
from stem.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from stem.app import Stem
    from stem.broker import JobRecord, Producer

#: Longest single blocking wait; the record is re-read between waits (covers expiry).
_WAIT_SLICE_S = 5.0


@dataclass(frozen=True)
class JobHandle:
    """A job by id. ``created`` is False when an idempotency key matched an earlier job."""

    app: Stem
    id: str
    queue: str
    created: bool = True

    def info(self) -> JobRecord | None:
        """The job's full record, or None if it is unknown or its record expired."""
        return self._broker.job(self.queue, self.id)

    def status(self) -> JobState | None:
        """The job's state, or None if it is unknown or its record expired."""
        record = self.info()
        return record.state if record is not None else None

    def result(self, timeout_s: float | None = None) -> Any:
        """Wait for the job to settle and return its result.

        Wakes as soon as the job settles (this call registers in the job's record, and the
        settle pushes a latch it blocks on; not a polling loop). A job kept with
        ``keep_result_s=0`` still answers a call blocked here when it settles; a later call
        raises ``JobNotFound``. Raises ``ResultTimeout`` after ``timeout_s`` (None: wait as
        long as it takes), ``JobFailed`` if it ended failed or dead (``.error`` holds
        type, message and traceback), ``JobNotFound`` if there is no such job.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        broker = self._broker
        while True:
            record = broker.job(self.queue, self.id)
            if record is None:
                raise JobNotFound(f"no job {self.id} in queue {self.queue!r}", job_id=self.id)
            if record.state in TERMINAL_STATES:
                return _outcome(record)
            remaining = _WAIT_SLICE_S if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise ResultTimeout(
                    f"job {self.id} still {record.state.value} after {timeout_s}s", job_id=self.id
                )
            broker.wait_done(self.queue, self.id, min(remaining, _WAIT_SLICE_S))

    @property
    def _broker(self) -> Producer:
        return self.app.broker

    async def result_async(self, timeout_s: float | None = None) -> Any:
        """``result`` for trio or asyncio code."""
        return await in_thread(self.result, timeout_s)

    async def status_async(self) -> JobState | None:
        """``status`` for trio or asyncio code."""
        return await in_thread(self.status)


def _outcome(record: JobRecord) -> Any:
    """The result of a settled job, or ``JobRevoked`` or ``JobFailed``; a stored value that
    is not JSON (someone else wrote it) is a ``PayloadError`` or an error message, never a
    crash."""
    if record.state is JobState.SUCCEEDED:
        try:
            return json.loads(record.result) if record.result is not None else None
        except ValueError:
            raise PayloadError(
                f"job {record.id} succeeded but its stored result is not JSON", job_id=record.id
            ) from None
    if record.state is JobState.REVOKED:
        raise JobRevoked(f"job {record.id} was revoked by an operator", job_id=record.id)
    try:
        error = json.loads(record.error) if record.error else {}
    except ValueError:
        error = {"type": "Error", "message": record.error}
    if not isinstance(error, dict):
        error = {"type": "Error", "message": str(error)}
    what = f"{error.get('type', 'Error')}: {error.get('message', '')}".rstrip(": ")
    reason = f" ({record.reason})" if record.reason else ""
    raise JobFailed(
        f"job {record.id} {record.state.value}{reason}: {what}", job_id=record.id, error=error
    )
