"""Queue, job and worker control: pausing queues, revoking jobs, commands to workers.
Mixed into ``RedisBroker``.

A pause is one key per queue (``QueueKeys.paused``) that ``fetch.lua`` reads first, so
it costs a worker one ``EXISTS`` inside the fetch it makes anyway and no round trip. A
revocation is the job's own state (``revoked``, terminal), written by ``revoke.lua``;
workers learn of the revocation of a job they run through :meth:`ControlMixin.revoked`.
A command to a worker is pushed on its control list (``Keys.worker_control``), which the
worker pops with each heartbeat (``AdminMixin.heartbeat``): no round trip of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from stem.broker.base import Delivery
from stem.broker.connection import mapped
from stem.broker.keys import JobField
from stem.broker.parts import BrokerParts
from stem.broker.values import text
from stem.states import JobState

_REVOKED = JobState.REVOKED.value
#: How long an unread command to a worker is kept (a worker that is gone never reads it).
COMMAND_TTL_S = 60
#: The error stored in a revoked job's record (``JobRevoked`` for result readers).
REVOKED_ERROR = json.dumps({"type": "JobRevoked", "message": "revoked by an operator"})


class ControlMixin(BrokerParts):
    """Pause, resume and revoke (needs ``client``, ``keys``, ``scripts``)."""

    result_ttl_s: int

    @mapped
    def pause(self, queue: str) -> bool:
        """Pause ``queue``: no worker starts a new job of it until :meth:`resume`; jobs
        are still accepted. Returns False when it was paused already."""
        qk = self.keys.queue(queue)
        self.client.sadd(self.keys.queues, queue)  # so that `stem queue list` shows it
        return bool(self.client.set(qk.paused, 1, nx=True))

    @mapped
    def resume(self, queue: str) -> bool:
        """Let workers start jobs of ``queue`` again; False when it was not paused."""
        return bool(self.client.delete(self.keys.queue(queue).paused))

    @mapped
    def revoke(self, queue: str, job_id: str, *, terminate: bool = False) -> tuple[int, str]:
        """Revoke job ``job_id`` of ``queue`` (see ``lua/revoke.lua``).

        Returns ``(1, previous state)`` when revoked, ``(0, state)`` when refused (it is
        terminal already, or started and ``terminate`` is false), ``(-1, "")`` when
        there is no such job.
        """
        qk = self.keys.queue(queue)
        code, state = self.scripts.revoke(
            keys=[qk.job(job_id), qk.done(job_id), qk.delayed],
            # At least a minute even with result_ttl_s=0: a running job's worker and its
            # ready entry must still find it revoked (EXPIRE 0 would delete it at once).
            args=[job_id, "1" if terminate else "0", max(self.result_ttl_s, 60), REVOKED_ERROR],
        )
        return int(code), text(state) or ""

    @mapped
    def revoked(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Those of ``deliveries`` whose job has been revoked (one round trip)."""
        with_id = [d for d in deliveries if d.job_id]
        if not with_id:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for d in with_id:
                pipe.hget(self.keys.queue(d.queue).job(d.job_id or ""), JobField.STATE.value)
            states = pipe.execute(raise_on_error=False)
        return [d for d, s in zip(with_id, states, strict=True) if text(s) == _REVOKED]

    @mapped
    def send_worker_command(self, worker_id: str, command: str) -> None:
        """Push ``command`` (``stop``, ``ping:<nonce>``) for worker ``worker_id``; it acts
        on it with its next heartbeat (every 2 s)."""
        key = self.keys.worker_control(worker_id)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(key, command)
            pipe.expire(key, COMMAND_TTL_S)
            pipe.execute()
