"""``stem job revoke``: make sure a job never runs, or stop it while it runs.

A revoked job ends in the terminal state ``revoked`` (not dead-lettered: there is
nothing to replay); ``stem result`` and ``handle.result()`` then raise ``JobRevoked``
(exit code 1). A job that runs already (or that a worker has prefetched: the broker
counts it as started) is revoked only with ``--terminate``: its worker cancels it within
about a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from stem.broker.keys import check_name
from stem.cli.output import emit_done, examples
from stem.cli.root import State
from stem.errors import JobNotFound, UsageError
from stem.states import JobState

if TYPE_CHECKING:
    from stem.broker import QueueControl


@click.group(name="job", epilog=examples("stem job revoke 01b8dac5b4009f3c2a7e5d1b8c460e27"))
def job() -> None:
    """Control single jobs."""


@job.command(
    name="revoke",
    epilog=examples(
        "stem job revoke 01b8dac5b4009f3c2a7e5d1b8c460e27",
        "stem job revoke 01b8dac5b4009f3c2a7e5d1b8c460e27 --terminate   # also if it runs",
    )
    + "\n\nExit code 2 when the job has finished already (or runs, without --terminate),"
    " 4 when there is no such job.",
)
@click.argument("job_id", metavar="ID")
@click.option("--queue", help="The job's queue.", show_default="search every known queue")
@click.option("--terminate", is_flag=True, help="Cancel the job if it is running now.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "queue", "was"}.')
@click.pass_obj
def revoke(state: State, job_id: str, queue: str | None, terminate: bool, as_json: bool) -> None:
    """Revoke job ID: if it waits (queued, delayed, retrying, throttled) it never runs.

    With --terminate a running job is cancelled too (an async task at its next await, a
    process-pool child killed, a thread job abandoned), within about a second.
    """
    broker: QueueControl = state.app.broker
    queues = [check_name("queue name", queue)] if queue is not None else None
    record = broker.find_job(job_id, queues)
    if record is None:
        where = f"queue {queue!r}" if queue else "any queue"
        raise JobNotFound(f"no job {job_id} in {where}", job_id=job_id)
    code, was = broker.revoke(record.queue, job_id, terminate=terminate)
    if code < 0:
        raise JobNotFound(f"no job {job_id} in queue {record.queue!r}", job_id=job_id)
    if code == 0 and was == JobState.STARTED.value:
        raise UsageError(f"job {job_id} is running: add --terminate to cancel it")
    if code == 0:
        raise UsageError(f"job {job_id} has finished already ({was}): nothing to revoke")
    doc = {"id": job_id, "queue": record.queue, "was": was}
    fields = [("id", job_id), ("queue", record.queue), ("was", was)]
    emit_done(f"job {job_id} revoked (it was {was})", doc, fields, as_json=as_json)
