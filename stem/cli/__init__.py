"""The ``stem`` command (click): ``main`` is the root group, with every command added.

Commands live one group per module: ``enqueue``, ``result``, ``observe``, ``dlq``,
``queue`` (pause, resume, drain), ``job`` (revoke), the
actors (``actors``: worker, reclaim, supervise, beat) and ``schedule``.
``root`` holds the global options, the app they select and the error edge: every error
is one ``stem: error: ...`` line and a documented exit code (see ``stem.cli.root``).
"""

from __future__ import annotations

# Modules, not their commands: ``stem.cli.dlq`` must stay the module (a command object
# of the same name here would shadow it for ``import stem.cli.dlq``).
from stem.cli import (
    actors,
    dlq,
    enqueue,
    job,
    limit,
    observe,
    queue,
    result,
    schedule,
    signing,
    workers,
)
from stem.cli.root import accept_global_options_after, cli, show_envvars

for _command in (
    actors.supervise,
    actors.worker,
    actors.reclaim,
    actors.beat,
    enqueue.enqueue,
    result.result,
    observe.observe,
    dlq.dlq,
    queue.queue,
    job.job,
    schedule.schedule,
    limit.limit,
    limit.ratelimit,
):
    cli.add_command(_command)
observe.observe.add_command(signing.signing)
for _control in (workers.list_workers, workers.ping, workers.stop):
    actors.worker.add_command(_control)
accept_global_options_after(cli)
show_envvars(cli)

#: The console script (``stem = "stem.cli:main"``) and ``python -m stem.cli``.
main = cli

__all__ = ["cli", "main"]
