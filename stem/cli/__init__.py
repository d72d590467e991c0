"""The ``stem`` command (click): ``main`` is the root group, with every command listed.

Commands live one group per module: ``enqueue``, ``result``, ``observe``, ``dlq``,
``queue`` (pause, resume, drain), ``job`` (revoke), the
actors (``actors``: worker, reclaim, supervise, beat) and ``schedule``.
``root`` holds the global options, the app they select and the error edge: every error
is one ``stem: error: ...`` line and a documented exit code (see ``stem.cli.root``).

The root group loads a command's module when the command runs (``LazyGroup``), so
``stem worker`` imports neither the admin, observe, dlq and schedule code nor their
dependencies: the map below names each command's ``module:attr`` and its short help.
"""

from __future__ import annotations

from stem.cli.root import accept_global_options_after, cli, show_envvars

#: Every command of ``stem``: name -> ("module:attr", the short help ``stem --help`` shows).
COMMANDS: dict[str, tuple[str, str]] = {
    "supervise": (
        "stem.cli.actors:supervise",
        "Run and watch every actor: workers, reclaimer, rate limiter, beat (and Redis if needed).",
    ),
    "worker": (
        "stem.cli.actors:worker",
        "Run a worker: fetch jobs from the queues and run the app's tasks.",
    ),
    "reclaim": (
        "stem.cli.actors:reclaim",
        "Run a reclaimer: hand back jobs whose worker died, promote due delayed jobs.",
    ),
    "beat": (
        "stem.cli.actors:beat",
        "Run a beat: enqueue every schedule entry's ticks on time.",
    ),
    "enqueue": (
        "stem.cli.enqueue:enqueue",
        "Enqueue one job of TASK (a task name) and print its id.",
    ),
    "result": ("stem.cli.result:result", "Look at a job's state and result, or wait for it."),
    "observe": ("stem.cli.observe:observe", "Look at queues, workers and job rates."),
    "dlq": ("stem.cli.dlq:dlq", "Inspect, replay and purge the dead-letter queue."),
    "queue": ("stem.cli.queue:queue", "Pause, resume and drain queues."),
    "job": ("stem.cli.job:job", "Control single jobs."),
    "schedule": ("stem.cli.schedule:schedule", "Manage beat's schedule entries at run time."),
    "limit": (
        "stem.cli.limit:limit",
        "Show and change rate and concurrency limits while everything runs.",
    ),
    "ratelimit": (
        "stem.cli.limit:ratelimit",
        "Run the rate limiter actor: release throttled jobs, take back dead holders' slots.",
    ),
}

cli.lazy.update(COMMANDS)
accept_global_options_after(cli)
show_envvars(cli)

#: The console script (``stem = "stem.cli:main"``) and ``python -m stem.cli``.
main = cli

__all__ = ["COMMANDS", "cli", "main"]
