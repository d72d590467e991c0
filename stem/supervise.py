"""``stem supervise``: one command that runs every actor under the trio supervisor.

It turns ``SuperviseOptions`` into ``supervisor.ChildSpec`` command lines and runs a
``supervisor.Supervisor``:

- ``redis`` (only without a Redis URL): a private ``redis-server`` on loopback with AOF
  on and its data in ``<data_dir>/redis``; its URL is printed and written to
  ``<data_dir>/redis.url``, where ``stem`` commands in other shells find it;
- ``worker`` x ``workers``: ``stem worker`` with the queue/concurrency options;
- ``reclaimer`` (``--reclaimer``, on by default), ``ratelimit`` (``--ratelimiter`` or
  ``ratelimiter = true`` in ``[supervise]``; by default when the app defines limits) and
  ``beat`` (``--beat``, on by default).

Strategy is rest_for_one in that order: if Redis restarts, every actor restarts after it;
a worker restart also restarts the (stateless) reclaimer and beat. Each actor touches a
heartbeat file from its event loop; one that goes quiet for ``heartbeat_timeout_s`` (a
frozen or wedged process) is SIGKILLed and replaced, and its jobs are reclaimed after
their lease. A worker whose process tree passes ``max_rss_mb`` is restarted gracefully.
SIGTERM/SIGINT stop the actors in reverse order (SIGTERM, SIGKILL after the stop
timeout); SIGHUP restarts them one at a time. Past the restart intensity the supervisor
stops everything and ``run`` returns exit code 1 naming the child.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from stem.config import parse_prefetch
from stem.embedded import find_redis_server, free_port, server_argv, wait_until_serving
from stem.errors import ConfigError
from supervisor import (
    Backoff,
    ChildSpec,
    RestartIntensity,
    RestartType,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
)

#: Grace for a worker between SIGTERM and SIGKILL: its own stop timeout plus margin.
KILL_MARGIN_S = 5.0


@dataclasses.dataclass(frozen=True)
class SuperviseOptions:
    """Everything ``stem supervise`` can be told; CLI flags and ``[supervise]`` keys map
    one to one onto these fields (unknown keys are refused)."""

    app_spec: str
    redis_url: str | None = None
    namespace: str | None = None
    workers: int = 1
    concurrency: int = 10
    prefetch: str | int = "auto"  # per worker, as `stem worker --prefetch`
    queues: str = "default"
    pool: str | None = None
    cpu: str = "auto"  # per worker, as `stem worker --cpu` (auto: each claims its own CPU)
    beat: bool = True
    reclaimer: bool = True
    ratelimiter: bool | None = None  # None: when the app defines limits (the CLI decides)
    config: str | None = None
    data_dir: str = ".stem"
    stop_timeout_s: float = 25.0
    heartbeat_timeout_s: float = 60.0
    max_rss_mb: float | None = None
    max_restarts: int = 5
    within_s: float = 60.0
    json_logs: bool = False
    metrics_port: int | None = None  # serve /metrics for the deployment on this port
    metrics_host: str = "0.0.0.0"  # noqa: S104  (scraped by Prometheus from elsewhere)

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.heartbeat_timeout_s <= 0 or self.stop_timeout_s < 0:
            raise ConfigError("heartbeat_timeout_s must be > 0 and stop_timeout_s >= 0")
        object.__setattr__(self, "prefetch", parse_prefetch(self.prefetch))  # as workers read it
        if self.cpu not in ("auto", "off"):  # one CPU number would pin every worker there
            raise ConfigError(f"cpu must be 'auto' or 'off' (per worker), got {self.cpu!r}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be 0..65535, got {self.metrics_port}")


def options_from_file(path: Path, overrides: Mapping[str, Any]) -> SuperviseOptions:
    """Options from the ``[supervise]`` table of ``path``, then ``overrides`` on top."""
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    table = doc.get("supervise", {})
    known = {f.name for f in dataclasses.fields(SuperviseOptions)} - {"config"}
    unknown = sorted(set(table) - known)
    if unknown:
        named = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            named.append(f"{key} (did you mean {close[0]!r}?)" if close else key)
        raise ConfigError(f"{path}: unknown key(s) in [supervise]: {', '.join(named)}")
    return SuperviseOptions(**{**table, **overrides, "config": str(path)})


def _stem_argv(options: SuperviseOptions, redis_url: str) -> list[str]:
    argv = [sys.executable, "-m", "stem", "--redis-url", redis_url, "--app", options.app_spec]
    if options.namespace:
        argv += ["--namespace", options.namespace]
    return argv


def build_specs(options: SuperviseOptions, redis_url: str | None) -> tuple[list[ChildSpec], str]:
    """The child specs, and the Redis URL the actors use (embedded when none was given)."""
    specs: list[ChildSpec] = []
    if redis_url is None:
        port = free_port()
        data = Path(options.data_dir).resolve() / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = server_argv(find_redis_server(), port, data, appendonly=True)
        specs.append(ChildSpec("redis", argv, stop_timeout_s=10, backoff=Backoff(initial_s=0.2)))
        redis_url = f"redis://127.0.0.1:{port}/0"
    base = _stem_argv(options, redis_url)
    beat_every = dict(heartbeat_timeout_s=options.heartbeat_timeout_s, stop_timeout_s=10.0)
    if options.workers:
        worker = [*base, "worker", "--queues", options.queues]
        worker += ["--concurrency", str(options.concurrency), "--prefetch", str(options.prefetch)]
        worker += ["--stop-timeout-s", str(options.stop_timeout_s)]
        if options.pool:
            worker += ["--pool", options.pool]
        if options.cpu != "auto":
            worker += ["--cpu", options.cpu]
        specs.append(
            ChildSpec(
                "worker",
                worker,
                replicas=options.workers,
                stop_timeout_s=options.stop_timeout_s + KILL_MARGIN_S,
                heartbeat_timeout_s=options.heartbeat_timeout_s,
                max_rss_mb=options.max_rss_mb,
            )
        )
    if options.reclaimer:
        specs.append(ChildSpec("reclaimer", [*base, "reclaim"], **beat_every))  # type: ignore[arg-type]
    if options.ratelimiter:
        specs.append(ChildSpec("ratelimit", [*base, "ratelimit"], **beat_every))  # type: ignore[arg-type]
    if options.beat:
        beat = [*base, "beat"]
        if options.config:
            beat += ["--config", options.config]
        specs.append(ChildSpec("beat", beat, **beat_every))  # type: ignore[arg-type]
    return specs, redis_url


def _announce(text: str, *, as_json: bool, level: str = "INFO", err: bool = False) -> None:
    """Print one of stem supervise's own lines; with ``as_json`` in the shape of the
    supervisor's event lines (``supervisor.output``: ``ts``, ``level``, ``logger``,
    ``msg``, ``actor``, ``pid``, ``child``, ``stream``)."""
    if as_json:
        import datetime
        import json

        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        doc: dict[str, str | int] = {"ts": now.replace("+00:00", "Z"), "level": level}
        doc["logger"] = "supervisor"
        doc |= {"msg": text, "actor": "supervisor", "pid": os.getpid()}
        text = json.dumps({**doc, "child": "supervisor", "stream": "event"})
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _restarts(supervisor: Supervisor) -> list[tuple[str, int]]:
    """(actor kind, restarts) per replica."""
    return [(child.name, child.restarts) for child in supervisor.statistics()]


def _register_meters(supervisor: Supervisor) -> None:
    """``stem.supervisor.restarts`` on the OTel meter (nothing while metrics are off)."""
    from stem.observe.metrics import observe_counter

    def read() -> list[tuple[float, dict[str, str]]]:
        totals: dict[str, int] = {}
        for name, n in _restarts(supervisor):
            totals[name] = totals.get(name, 0) + n
        return [(float(n), {"stem.actor": name}) for name, n in totals.items()]

    observe_counter(
        "stem.supervisor.restarts", "{restart}", "Times an actor's process was restarted.", read
    )


def _serve_metrics(options: SuperviseOptions, url: str, supervisor: Supervisor) -> Any:
    """Start the deployment's /metrics (and the restart counts) when ``metrics_port`` is
    set; returns the HTTP server to shut down, or None. Serves from a daemon thread."""
    if options.metrics_port is None:
        return None
    from stem.config import load_app
    from stem.observe.prometheus import RestartsCollector, serve_metrics

    app = load_app(options.app_spec)
    app.connect(url, namespace=options.namespace)

    def restarts() -> list[tuple[str, int]]:
        return _restarts(supervisor)

    try:
        server, _ = serve_metrics(
            app.broker,
            options.metrics_port,
            options.metrics_host,
            lease_s=app.lease_s,
            extra=[RestartsCollector(restarts)],
        )
    except OSError as exc:  # port taken, address not ours: one line, before any actor starts
        where = f"{options.metrics_host}:{options.metrics_port}"
        raise ConfigError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None
    host = options.metrics_host
    _announce(
        f"stem: serving metrics on http://{host}:{server.server_port}/metrics",
        as_json=options.json_logs,
    )
    return server


def run(options: SuperviseOptions, redis_url: str | None) -> int:
    """Supervise the actors until stopped; return 0, or 1 when the supervisor gave up."""
    specs, url = build_specs(options, redis_url)
    data_dir = Path(options.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    url_file = data_dir / "redis.url"
    embedded = redis_url is None

    if options.json_logs:  # the actors (and their pool children) log JSON lines too
        os.environ["STEM_JSON_LOGS"] = "1"
    supervisor = Supervisor(
        specs,
        strategy=Strategy.REST_FOR_ONE,
        intensity=RestartIntensity(max_restarts=options.max_restarts, within_s=options.within_s),
        output_json=options.json_logs,
        status_path=data_dir / "supervise.json",
        handle_signals=True,
    )

    gave_up: list[SupervisorGaveUp] = []
    _register_meters(supervisor)
    metrics = _serve_metrics(options, url, supervisor)  # a bad port fails before any start
    names = ", ".join(f"{s.name} x{s.replicas}" if s.replicas > 1 else s.name for s in specs)
    _announce(f"stem: supervising {names}", as_json=options.json_logs)

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            if embedded:
                nursery.start_soon(_announce_when_serving, url, url_file, options.json_logs)
            # Caught here, inside the nursery: once it leaves the nursery trio wraps it in
            # an ExceptionGroup, which an ``except SupervisorGaveUp`` would not match.
            try:
                await supervisor.serve()
            except SupervisorGaveUp as exc:
                gave_up.append(exc)
            nursery.cancel_scope.cancel()

    try:
        trio.run(serve)
    finally:
        if embedded:
            url_file.unlink(missing_ok=True)
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
    if gave_up:
        message = f"stem: error: supervisor {gave_up[0]}"
        _announce(message, as_json=options.json_logs, level="ERROR", err=True)
        return 1
    return 0


async def _announce_when_serving(url: str, url_file: Path, as_json: bool) -> None:
    """Write the embedded Redis URL where stem commands find it, once Redis answers."""
    port = int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    await trio.to_thread.run_sync(wait_until_serving, port, 60.0, abandon_on_cancel=True)
    url_file.write_text(url + "\n")
    _announce(f"stem: embedded Redis at {url} (written to {url_file})", as_json=as_json)


__all__ = ["RestartType", "SuperviseOptions", "build_specs", "options_from_file", "run"]
