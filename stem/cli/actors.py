"""The actor commands: ``stem worker``, ``stem reclaim``, ``stem supervise``, ``stem beat``.

Each is a thin wrapper: it checks its options, then calls ``run(...)`` of the actor's
module, imported inside the command (actors pull in trio and the runtime, which the
other commands do not need), and exits with the code ``run`` returns.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import click
from click.core import ParameterSource

from stem.cli.root import LazyGroup, State, log_level_option
from stem.errors import ConfigError


def actor_module(name: str) -> ModuleType:
    """Import the actor module ``name``; a usage error if it is not part of this install."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise click.UsageError(f"not available yet: {name} is not installed") from None
        raise


def _need_app(state: State, command: str) -> str:
    if state.app_spec is None:
        raise ConfigError(f"stem {command} needs the app: give --app module:attr (or set STEM_APP)")
    return state.app_spec


def _log_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``-l/--log-level`` and ``--json-logs`` for an actor command.

    Both are handed on through the environment (``STEM_LOG_LEVEL``, ``STEM_JSON_LOGS``),
    which ``stem.observe.logs`` reads, so the actor's pool children log the same way.
    """

    def remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            os.environ["STEM_JSON_LOGS"] = "1"
        return value

    as_json = click.option(
        "--json-logs",
        is_flag=True,
        envvar="STEM_JSON_LOGS",
        expose_value=False,
        callback=remember,
        help="Log one JSON object per line.",
    )
    return log_level_option(as_json(command))


# -- stem worker ------------------------------------------------------------------------


@click.group(
    name="worker",
    cls=LazyGroup,
    # The controls talk to running workers: loaded only when one of them runs.
    lazy={
        "list": ("stem.cli.workers:list_workers", "Live workers (as `stem observe workers`)."),
        "ping": (
            "stem.cli.workers:ping",
            "Ask worker NAME to answer; print how long it took (up to a heartbeat, 2 s).",
        ),
        "stop": (
            "stem.cli.workers:stop",
            "Stop worker NAME gracefully, as SIGTERM does (within a heartbeat, 2 s).",
        ),
    },
    invoke_without_command=True,
    epilog="""Examples:

\b
  stem --app myapp.jobs:app worker
  stem --app myapp.jobs:app worker --queues high,default --concurrency 20
  stem --app myapp.jobs:app worker --queues high:3,low:1 --pool threads
  stem --app myapp.jobs:app worker --burst     # drain the queues, then exit 0
  stem --app myapp.jobs:app worker --cpu off   # let the kernel move its threads
  stem --app myapp.jobs:app worker --prefetch 0  # long jobs: hold none ahead
  stem worker list                             # live workers
  stem worker stop host1/worker.1              # the same graceful stop as SIGTERM

SIGTERM or SIGINT stops it gracefully (running jobs get --stop-timeout-s, then are
handed back); a second Ctrl-C stops it at once. The subcommands (list, ping, stop) talk
to running workers instead of running one.
""",
)
@click.option(
    "-Q",
    "--queues",
    metavar="SPEC",
    help="Queues to serve: 'a,b' (strict order) or 'a:3,b:1' (weighted).",
    show_default="the app's default queue",
)
@click.option(
    "-c", "--concurrency", type=click.IntRange(min=1), default=10, help="Jobs run at once."
)
@click.option(
    "--prefetch",
    metavar="auto|N",
    default="auto",
    show_default=True,
    help="Jobs held ahead of a free slot; auto: what starts within 50 ms at the measured pace.",
)
@click.option(
    "--pool",
    type=click.Choice(["threads", "processes"]),
    help="Run every sync task in this pool (async tasks stay async).",
    show_default="each task's own",
)
@click.option("--burst", is_flag=True, help="Exit (code 0) once the queues are empty.")
@click.option(
    "--stop-timeout-s", type=click.FloatRange(min=0), default=25.0,
    metavar="S", help="On SIGTERM, how long running jobs may finish.",
)  # fmt: skip
@click.option("--name", help="Consumer name.", show_default="<host>/<pid>, or <host>/worker.<n>")
@click.option(
    "--cpu",
    metavar="auto|off|N",
    default="auto",
    help="Keep the worker's threads on one CPU: auto claims one no other worker holds.",
)
@_log_options
@click.pass_context
def worker(ctx: click.Context, /, queues: str | None, **options: Any) -> None:
    """Run a worker: fetch jobs from the queues and run the app's tasks."""
    if ctx.invoked_subcommand is not None:
        return  # `stem worker list|ping|stop`: the subcommand does the work
    state: State = ctx.obj
    app_spec = _need_app(state, "worker")
    module = actor_module("stem.worker")
    app = state.app
    names, weights = module.parse_queues(queues or app.default_queue)
    code = module.run(app, app_spec, queues=list(names), weights=weights, **options)
    raise click.exceptions.Exit(code)


# -- stem reclaim -----------------------------------------------------------------------


@click.command(
    name="reclaim",
    epilog="""Examples:

\b
  stem --app myapp.jobs:app reclaim
  stem --app myapp.jobs:app reclaim --queues default,high --interval-s 2

Run any number of them: each expired lease is taken back by exactly one. Use --app so
the lease and max_deliveries are the app's (without it, the defaults).
""",
)
@click.option(
    "-Q", "--queues", metavar="A,B", help="Only these queues.", show_default="every known queue"
)
@click.option(
    "--interval-s",
    type=click.FloatRange(min=0.01),
    metavar="S",
    help="Seconds between reclaim rounds.",
    show_default="half the lease, at most 5",
)
@_log_options
@click.pass_obj
def reclaim(state: State, queues: str | None, interval_s: float | None) -> None:
    """Run a reclaimer: hand back jobs whose worker died, promote due delayed jobs."""
    from stem.broker.keys import check_name

    names = None
    if queues is not None:
        names = [check_name("queue name", q.strip()) for q in queues.split(",") if q.strip()]
        if not names:
            raise ConfigError("--queues names no queue")
    module = actor_module("stem.reclaimer")
    raise click.exceptions.Exit(module.run(state.app, queues=names, interval_s=interval_s))


# -- stem supervise ---------------------------------------------------------------------


@click.command(
    name="supervise",
    epilog="""Examples:

\b
  stem supervise --app myapp.jobs:app                      # embedded Redis, 1 worker
  stem supervise --app myapp.jobs:app --workers 4
  stem supervise --app myapp.jobs:app --config stem.toml   # options from [supervise]
  stem supervise --app myapp.jobs:app --no-ratelimiter     # limiters run elsewhere
  STEM_REDIS_URL=redis://redis.internal:6379/0 stem supervise --app myapp.jobs:app
  stem supervise --app myapp.jobs:app --metrics-port 9808  # Prometheus /metrics
  stem supervise --app myapp.jobs:app --cpu off            # workers not pinned to CPUs

Without a Redis URL (--redis-url, STEM_REDIS_URL or redis_url in [supervise]) it starts
an embedded redis-server. Flags (and their env vars) win over the [supervise] table of
--config (or $STEM_CONFIG); defaults do not. Exit code 1 when the supervisor gave up
(too many restarts).
""",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="STEM_CONFIG",
    help="A stem.toml: options from its [supervise] table; also passed to beat.",
)
@click.option("--workers", type=click.IntRange(min=0), default=1, help="Worker processes.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=10, help="Per worker.")
@click.option("--prefetch", metavar="auto|N", default="auto", help="Per worker.")
@click.option(
    "-Q", "--queues", metavar="SPEC", default="default", help="Per worker, as `stem worker -Q`."
)
@click.option(
    "--pool",
    type=click.Choice(["threads", "processes"]),
    help="Per worker.",
    show_default="each task's own",
)
@click.option(
    "--cpu",
    metavar="auto|off",
    type=click.Choice(["auto", "off"]),
    default="auto",
    help="Per worker: auto keeps each on a CPU of its own.",
)
@click.option("--beat/--no-beat", default=True, help="Run a beat.")
@click.option("--reclaimer/--no-reclaimer", default=True, help="Run a reclaimer.")
@click.option(
    "--ratelimiter/--no-ratelimiter",
    default=None,
    help="Run a rate limiter (it releases jobs that rate and concurrency limits held back).",
    show_default="when the app defines limits",
)
@click.option(
    "--data-dir", metavar="DIR", default=".stem", help="Embedded Redis data, status file."
)
@click.option(
    "--stop-timeout-s", type=click.FloatRange(min=0), default=25.0, metavar="S", help="Per worker."
)
@click.option(
    "--heartbeat-timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    metavar="S",
    help="Restart an actor whose heartbeat is older.",
)
@click.option(
    "--max-rss-mb",
    type=click.FloatRange(min=0, min_open=True),
    help="Restart a worker past this RSS.",
    show_default="no limit",
)
@click.option(
    "--max-restarts", type=click.IntRange(min=0), default=5, help="Restart intensity: N ..."
)
@click.option(
    "--within-s", type=click.FloatRange(min=0, min_open=True), default=60.0, help="... within S."
)
@click.option("--json-logs/--text-logs", default=False, help="Actors' output as JSON lines.")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    envvar="STEM_METRICS_PORT",
    help="Serve Prometheus /metrics for the whole deployment (and restarts) on this port.",
    show_default="off",
)
@click.option(
    "--metrics-host",
    default="0.0.0.0",  # noqa: S104  (Prometheus scrapes it from elsewhere; counts, no secrets)
    show_default=True,
    help="Address the /metrics endpoint listens on.",
)
@log_level_option
@click.pass_context
def supervise(ctx: click.Context, /, config: str | None, **flags: Any) -> None:
    """Run and watch every actor: workers, reclaimer, rate limiter, beat (and Redis if
    needed)."""
    state = ctx.find_object(State)
    assert state is not None  # noqa: S101  (the stem group always passes its State)
    # Only what was given (flag or env var) overrides [supervise]: defaults do not.
    given = {
        name: value
        for name, value in flags.items()
        if value is not None and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    }
    overrides: dict[str, Any] = given
    if state.app_spec is not None:
        overrides["app_spec"] = state.app_spec
    if state.namespace is not None:
        overrides["namespace"] = state.namespace
    if state.redis_url is not None:
        overrides["redis_url"] = state.redis_url
    module = actor_module("stem.supervise")
    options = _supervise_options(module, config, overrides)
    # Fail here, in one line, rather than in every actor's restart loop.
    from stem.config import load_app

    app = load_app(options.app_spec)
    if options.ratelimiter is None:  # neither flag nor [supervise]: only if it has work
        options = dataclasses.replace(options, ratelimiter=bool(app.limit_specs()))
    # Deliberately not resolve_redis_url(): ./.stem/redis.url is the embedded Redis's own
    # file, and a stale one must not stop the supervisor from starting a fresh Redis.
    raise click.exceptions.Exit(module.run(options, options.redis_url))


def _supervise_options(module: ModuleType, config: str | None, overrides: dict[str, Any]) -> Any:
    from pathlib import Path

    try:
        if config is not None:
            return module.options_from_file(Path(config), overrides)
        return module.SuperviseOptions(**overrides)
    except TypeError as exc:
        if "app_spec" in str(exc):
            raise ConfigError(
                "stem supervise needs the app: give --app module:attr (or set STEM_APP, "
                "or app_spec in [supervise])"
            ) from None
        raise


# -- stem beat -------------------------------------------------------------------------


@click.command(
    name="beat",
    epilog="""Examples:

\b
  stem --app myproject.tasks:app beat --config stem.toml
  stem --app myproject.tasks:app beat --name beat-eu-1   # any number, on any hosts
""",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="STEM_CONFIG",
    help="A stem.toml whose [[schedule]] entries to sync [env: STEM_CONFIG].",
)
@click.option(
    "--name", help="How this beat signs the runs it records.", show_default="beat/<host>/<pid>"
)
@_log_options
@click.pass_obj
def beat(state: State, config_path: str | None, name: str | None) -> None:
    """Run a beat: enqueue every schedule entry's ticks on time.

    Run as many beats as you like, on any hosts: each tick is enqueued exactly once (its
    job id and idempotency key derive from the entry and the tick). At start the beat
    syncs the entries declared in code and in --config into Redis; it then re-reads them
    every second, so `stem schedule` changes apply at once. A bad entry is logged in one
    line and skipped. SIGTERM or SIGINT stops it (exit 0).
    """
    from stem.beat.service import run

    raise click.exceptions.Exit(run(state.app, config_path=config_path, name=name))
