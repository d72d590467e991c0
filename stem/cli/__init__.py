"""The ``stem`` command (click): ``main`` is the root group, with every command added.

Commands live one group per module: ``enqueue``, ``result``, ``observe``, ``dlq``, the
actors (``actors``: worker, reclaim, supervise) and ``schedule`` (schedule ..., beat).
``root`` holds the global options, the app they select and the error edge: every error
is one ``stem: error: ...`` line and a documented exit code (see ``stem.cli.root``).
"""

from __future__ import annotations

from stem.cli.actors import reclaim, supervise, worker
from stem.cli.dlq import dlq
from stem.cli.enqueue import enqueue
from stem.cli.observe import observe
from stem.cli.result import result
from stem.cli.root import accept_global_options_after, cli
from stem.cli.schedule import beat, schedule

for _command in (supervise, worker, reclaim, beat, enqueue, result, observe, dlq, schedule):
    cli.add_command(_command)
accept_global_options_after(cli)

#: The console script (``stem = "stem.cli:main"``) and ``python -m stem.cli``.
main = cli

__all__ = ["cli", "main"]
