"""``stem observe queues|workers|metrics|serve|supervisor``: what is queued, who works on it,
how fast; ``serve`` is the Prometheus endpoint."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stem.cli import output
from stem.cli.metrics_view import (
    ENTER_SCREEN,
    LEAVE_SCREEN,
    frame,
    metrics_doc,
    metrics_lines,
    render_metrics,
)
from stem.cli.output import (
    Column,
    echo_json,
    emit,
    now_ms,
    say,
    span,
)
from stem.cli.root import LazyGroup, State
from stem.errors import NotFound, UsageError
from stem.observe.live import Window, refresh_every

if TYPE_CHECKING:
    from stem.broker import Admin

QUEUE_COLUMNS = [
    Column("queue", "QUEUE"),
    Column("ready", "READY"),
    Column("delayed", "DELAYED"),
    Column("pending", "PENDING"),
    Column("dead", "DEAD"),
    Column("paused", "PAUSED", lambda v: "yes" if v else "no"),
]


#: ``stem observe queues`` (and metrics): the depths, then the jobs a limit holds back and
#: whether a rate limiter is there to release them.
OBSERVE_QUEUE_COLUMNS = [
    *QUEUE_COLUMNS,
    Column("throttled", "THROTTLED"),
    Column("limiter", "LIMITER", lambda v: v or "-"),
]


def _age(ms: Any) -> str:
    return "-" if ms is None else span(ms / 1000)


def _csv(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value or "-")


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}/s"


WORKER_COLUMNS = [
    Column("id", "WORKER"),
    Column("host", "HOST"),
    Column("pid", "PID"),
    Column("queues", "QUEUES", _csv),
    Column("concurrency", "CONC"),
    Column("in_flight", "HELD"),
    Column("running", "RUNNING"),
    Column("processed", "PROCESSED"),
    Column("failed", "FAILED"),
    Column("uptime_ms", "UP", _age, label="up"),
    Column("heartbeat_age_ms", "SEEN", _age, label="seen"),
]


def queue_docs(broker: Admin) -> list[dict[str, Any]]:
    """Depth of every known queue, with ``throttled`` (jobs waiting for a limit) and
    ``limiter``: ``"up"`` while a rate limiter is alive, ``"missing"`` when none is and
    throttled jobs wait for one (they wait until one runs), else None."""
    queues = broker.queues()
    alive = bool(queues) and bool(broker.actors("ratelimiter"))
    docs = []
    for q in queues:
        doc = dataclasses.asdict(broker.queue_stats(q))
        doc["throttled"] = broker.limit_waiting(q)
        doc["limiter"] = "up" if alive else ("missing" if doc["throttled"] else None)
        docs.append(doc)
    return docs


def warn_missing_limiter(docs: Sequence[dict[str, Any]]) -> None:
    """One line on stderr when throttled jobs wait and no rate limiter runs."""
    stuck = {d["queue"]: d["throttled"] for d in docs if d.get("limiter") == "missing"}
    if stuck:
        where = ", ".join(f"{n} in {q}" for q, n in stuck.items())
        click.echo(
            f"stem: warning: no rate limiter is running: throttled jobs ({where}) wait until "
            "one runs (`stem ratelimit`, or ratelimiter = true in [supervise])",
            err=True,
        )


def worker_docs(broker: Admin, at_ms: int | None = None) -> list[dict[str, Any]]:
    """Heartbeat records of live workers, with their heartbeat age and uptime, by id."""
    at_ms = now_ms() if at_ms is None else at_ms
    docs = []
    for record in broker.workers():
        doc = dict(record)
        ts_ms = record.get("ts_ms")
        started = record.get("started_at")
        doc["heartbeat_age_ms"] = max(0, at_ms - ts_ms) if isinstance(ts_ms, int) else None
        doc["uptime_ms"] = (
            max(0, at_ms - int(started * 1000)) if isinstance(started, int | float) else None
        )
        docs.append(doc)
    return sorted(docs, key=lambda d: str(d.get("id", "")))


#: Workers write a heartbeat every 2 s (``stem.worker.core``): a rate needs two of them,
#: so a snapshot waits up to this long past --interval for every worker's next one.
HEARTBEAT_WAIT_S = 2.5


@dataclass(frozen=True)
class Sample:
    """Workers' counters by id: (heartbeat time ms, processed, failed)."""

    at_s: float
    counters: dict[str, tuple[int, int, int]]

    def stale(self, before: Sample) -> bool:
        """Whether a worker in both samples has not written a newer heartbeat yet."""
        return any(
            c[0] <= before.counters[w][0] for w, c in self.counters.items() if w in before.counters
        )


def sample(workers: Sequence[dict[str, Any]], at_s: float) -> Sample:
    """The counters of ``workers`` by id (records without an id or counters are left out)."""
    counters: dict[str, tuple[int, int, int]] = {}
    for w in workers:
        wid, ts_ms, processed, failed = (w.get(k) for k in ("id", "ts_ms", "processed", "failed"))
        if (
            isinstance(wid, str)
            and isinstance(ts_ms, int)
            and isinstance(processed, int)
            and isinstance(failed, int)
        ):
            counters[wid] = (ts_ms, processed, failed)
    return Sample(at_s, counters)


def rates(before: Sample, after: Sample) -> dict[str, Any]:
    """Jobs per second between two samples, in total and per worker.

    Each worker's rate is over the time between its two heartbeats (its counters only
    change with a heartbeat); a worker without a newer heartbeat, or in one sample only,
    is left out. A counter that went down (restart under the same name) counts from zero.
    """
    per_worker: dict[str, dict[str, float]] = {}
    for wid, (t1, p1, f1) in after.counters.items():
        t0, p0, f0 = before.counters.get(wid, (t1, 0, 0))
        if t1 <= t0:
            continue
        window_s = (t1 - t0) / 1000
        per_worker[wid] = {
            "processed_per_s": (p1 - p0 if p1 >= p0 else p1) / window_s,
            "failed_per_s": (f1 - f0 if f1 >= f0 else f1) / window_s,
        }
    return {
        "interval_s": round(after.at_s - before.at_s, 3),
        "processed_per_s": sum(r["processed_per_s"] for r in per_worker.values()),
        "failed_per_s": sum(r["failed_per_s"] for r in per_worker.values()),
        "workers": per_worker,
    }


def next_sample(broker: Admin, before: Sample, interval_s: float) -> Sample:
    """A sample ``interval_s`` after ``before``, or later (bounded) until every worker
    has written a newer heartbeat, so that each gets a rate."""
    time.sleep(interval_s)
    deadline = time.monotonic() + HEARTBEAT_WAIT_S
    after = sample(broker.workers(), time.monotonic())
    while after.stale(before) and time.monotonic() < deadline:
        time.sleep(0.1)
        after = sample(broker.workers(), time.monotonic())
    return after


@click.group(
    name="observe",
    cls=LazyGroup,
    lazy={
        "signing": (
            "stem.cli.signing:signing",
            "Jobs per signing key id: ready, pending, delayed and dead-lettered.",
        )
    },
    epilog="""Examples:

\b
  stem observe queues
  stem observe workers --json
  stem observe metrics            # live on a terminal, Ctrl-C to leave
  stem observe supervisor         # children of `stem supervise`: restarts, uptime
  stem observe serve --port 9808  # Prometheus /metrics for the whole deployment
""",
)
def observe() -> None:
    """Look at queues, workers and job rates."""


@observe.command(
    name="queues",
    epilog="""Examples:

\b
  stem observe queues
  stem observe queues --json | jq '.[] | select(.dead > 0) | .queue'

READY waits for a worker, DELAYED waits for its time (delays, retries), PENDING is held
by workers (running or prefetched), DEAD is in the dead-letter queue, THROTTLED waits
for a rate or concurrency limit. LIMITER is "up" while a rate limiter runs, "missing"
(with a warning on stderr) when throttled jobs wait and none runs to release them.
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def queues(state: State, as_json: bool) -> None:
    """Ready, delayed, pending, dead and throttled jobs of every known queue."""
    docs = queue_docs(state.app.broker)
    emit(docs, OBSERVE_QUEUE_COLUMNS, as_json=as_json, empty="no queues yet")
    warn_missing_limiter(docs)


@observe.command(
    name="workers",
    epilog="""Examples:

\b
  stem observe workers
  stem observe workers --json | jq '.[].id'

A worker is listed while its heartbeat (every 2 s, kept 10 s) is alive. HELD is jobs
held (running + prefetched), SEEN the age of its last heartbeat.
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of heartbeat records.")
@click.pass_obj
def workers(state: State, as_json: bool) -> None:
    """Live workers: where they run, their queues, load and counters."""
    emit(worker_docs(state.app.broker), WORKER_COLUMNS, as_json=as_json, empty="no live workers")


def actor_counts(broker: Admin) -> dict[str, int]:
    """Live reclaimers, beats and rate limiters (their presence records), by kind."""
    from stem.observe.presence import KINDS

    return {kind: len(broker.actors(kind)) for kind in KINDS}


#: The clock and sleep of `observe metrics`, and the live view's number of frames (None:
#: until Ctrl-C); tests put a fake clock here to check the refresh rate without waiting.
CLOCK: Callable[[], float] = time.monotonic
SLEEP: Callable[[float], None] = time.sleep
LIVE_FRAMES: int | None = None


@observe.command(
    name="metrics",
    epilog="""Examples:

\b
  stem observe metrics                    # full screen, refreshes every second until Ctrl-C
  stem observe metrics --interval 5 --window 60
  stem observe metrics --once --json      # one snapshot, for scripts
  stem observe metrics | grep ^task:      # one line per queue, task and worker

Per queue and per task: jobs completed per second (RATE), dead-lettered (FAILED, jobs,
not attempts) and retried attempts per second, wait and run time p50/p99, and per queue
its ready jobs, DLQ depth, jobs in flight and the workers serving it. The numbers come
from the workers' heartbeats (every 2 s): on a terminal the view redraws every --interval
seconds with rates over the last --window seconds; with --once, --json or in a pipe, one
snapshot over --interval (or until every worker has beaten again, up to 2.5 s more).
""",
)
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as a JSON object.")
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    metavar="S",
    help="Seconds between refreshes (live), or between the two reads of a snapshot.",
)
@click.option(
    "--window",
    "window_s",
    type=click.FloatRange(min=1),
    default=10.0,
    show_default=True,
    metavar="S",
    help="The live view's rates and percentiles cover the last S seconds.",
)
@click.pass_obj
def metrics(state: State, once: bool, as_json: bool, interval_s: float, window_s: float) -> None:
    """Rates, wait and run times per queue and per task (live on a terminal)."""
    broker: Admin = state.app.broker
    if output.stdout_is_tty() and not once and not as_json:
        _live_metrics(broker, interval_s, window_s)
        return
    window = Window(float("inf"))
    window.add(CLOCK(), broker.workers())
    SLEEP(interval_s)
    deadline = CLOCK() + HEARTBEAT_WAIT_S
    window.add(CLOCK(), broker.workers())
    while window.stale() and CLOCK() < deadline:
        SLEEP(0.1)
        window.add(CLOCK(), broker.workers())
    queues = queue_docs(broker)
    doc = metrics_doc(queues, worker_docs(broker), window, actor_counts(broker))
    warn_missing_limiter(queues)
    if as_json:
        echo_json(doc)
    elif output.stdout_is_tty():
        click.echo(render_metrics(doc, WORKER_COLUMNS))
    else:
        for line in metrics_lines(doc, WORKER_COLUMNS):
            click.echo(line)


def _live_metrics(broker: Admin, interval_s: float, window_s: float) -> None:
    """The full-screen view: a frame every ``interval_s`` until Ctrl-C (exit 0), on the
    terminal's alternate screen, which is left as it was found."""
    window = Window(window_s)

    def draw() -> None:
        window.add(CLOCK(), broker.workers())
        doc = metrics_doc(queue_docs(broker), worker_docs(broker), window, actor_counts(broker))
        text = render_metrics(doc, WORKER_COLUMNS)
        click.echo(frame(text, interval_s, window_s), nl=False, color=True)

    click.echo(ENTER_SCREEN, nl=False, color=True)
    try:
        refresh_every(interval_s, draw, clock=CLOCK, sleep=SLEEP, frames=LIVE_FRAMES)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo(LEAVE_SCREEN, nl=False, color=True)


@observe.command(
    name="serve",
    epilog="""Examples:

\b
  stem observe serve                          # http://0.0.0.0:9808/metrics
  stem observe serve --port 9100 --host 127.0.0.1
  stem observe serve --once                   # print one scrape and exit

Every scrape reads queue depths, the oldest ready job's age, the dead-letter queues and
the live workers' heartbeats from Redis, so one endpoint covers every worker on every
machine. Families: docs/reference/metrics.md. Ctrl-C stops it.
""",
)
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=9808,
    show_default=True,
    envvar="STEM_METRICS_PORT",
    help="Port to listen on [env: STEM_METRICS_PORT].",
)
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104  (a scrape endpoint must be reachable by Prometheus; it serves counts, no secrets)
    show_default=True,
    help="Address to listen on.",
)
@click.option("--once", is_flag=True, help="Print one scrape's exposition and exit.")
@click.pass_obj
def serve(state: State, port: int, host: str, once: bool) -> None:
    """Serve Prometheus /metrics for the whole deployment, computed from Redis."""
    from stem.observe.prometheus import exposition, serve_metrics

    app = state.app
    broker: Admin = app.broker
    if once:
        click.echo(exposition(broker, app.lease_s), nl=False)
        return
    server, thread = serve_metrics(broker, port, host, lease_s=app.lease_s)
    click.echo(f"stem: serving metrics on http://{host}:{server.server_port}/metrics", err=True)
    try:
        thread.join()
    finally:  # Ctrl-C: stop serving, then exit 130 like every command
        server.shutdown()
        server.server_close()


SUPERVISOR_COLUMNS = [
    Column("child", "CHILD"),
    Column("pid", "PID"),
    Column("state", "STATE"),
    Column("restarts", "RESTARTS"),
    Column("uptime_s", "UPTIME", lambda v: "-" if v is None else span(float(v)), "uptime"),
    Column("last_reason", "LAST EXIT"),
]


@observe.command(
    name="supervisor",
    epilog="""Examples:

\b
  stem observe supervisor                      # reads ./.stem/supervise.json
  stem observe supervisor --data-dir /srv/app/.stem --json

Shows what a running (or the last) `stem supervise` in that data directory runs: every
replica with its pid, state, restart count, uptime and why it last exited. The file is
rewritten on every change and every 2 s; its age tells whether the supervisor is alive.
""",
)
@click.option(
    "--data-dir",
    default=".stem",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The --data-dir of the `stem supervise` to look at.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the status file as JSON.")
def supervisor_status(data_dir: Path, as_json: bool) -> None:
    """Children of `stem supervise`: state, restarts and uptime."""
    from supervisor import read_status

    path = data_dir / "supervise.json"
    if not path.is_file():
        raise NotFound(f"no supervisor status at {path}: is `stem supervise` running here?")
    try:
        status = read_status(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if as_json:
        echo_json(status.to_json())
        return
    age = span(max(0.0, time.time() - status.updated_at))
    # The summary is for people: in a pipe it goes to stderr, the children's lines stay alone.
    say(f"supervisor pid {status.supervisor_pid}: {status.state.value} (updated {age} ago)")
    rows = [
        {
            "child": c.label,
            "pid": c.pid,
            "state": c.state.value,
            "restarts": c.restarts,
            "uptime_s": c.uptime_s,
            "last_reason": c.last_reason,
        }
        for c in status.children
    ]
    emit(rows, SUPERVISOR_COLUMNS, as_json=False, empty="no children")


@observe.command(
    name="scaling",
    epilog="""Examples:

\b
  stem observe scaling                          # sample 5 s, clear the backlog in 60 s
  stem observe scaling --interval 30 --drain-s 300 --json

Samples the ready backlog and the workers' counters --interval apart, then advises how
many workers keep up with arrivals (plus --headroom) and clear the backlog within
--drain-s. An estimate for one moment's load, not an autoscaler: see docs/slo.md.
""",
)
@click.option("--interval", "interval_s", type=click.FloatRange(min=0.5), default=5.0,
              show_default=True, metavar="S", help="Seconds between the two samples.")  # fmt: skip
@click.option("--drain-s", type=click.FloatRange(min=1), default=60.0, show_default=True,
              metavar="S", help="Clear the current backlog within this many seconds.")  # fmt: skip
@click.option("--headroom", type=click.FloatRange(min=0), default=0.2, show_default=True,
              help="Spare capacity over the arrival rate (0.2 = 20%).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the load and advice as JSON.")
@click.pass_obj
def scaling(
    state: State, interval_s: float, drain_s: float, headroom: float, as_json: bool
) -> None:
    """Advise how many workers the current load needs."""
    from stem.observe.scaling import Load, advise

    broker = state.app.broker
    backlog_before = sum(q["ready"] for q in queue_docs(broker))
    before = sample(broker.workers(), time.monotonic())
    after = next_sample(broker, before, interval_s)
    workers = worker_docs(broker)
    busy = [
        int(w.get("running") or 0) / int(w["concurrency"])
        for w in workers
        if isinstance(w.get("concurrency"), int) and w["concurrency"] > 0
    ]
    load = Load(
        window_s=max(after.at_s - before.at_s, 1e-3),
        workers=len(workers),
        processed_per_s=rates(before, after)["processed_per_s"],
        backlog_before=backlog_before,
        backlog_after=sum(q["ready"] for q in queue_docs(broker)),
        utilisation=sum(busy) / len(busy) if busy else 0.0,
    )
    advice = advise(load, drain_s=drain_s, headroom=headroom)
    if as_json:
        echo_json({"load": dataclasses.asdict(load), "advice": dataclasses.asdict(advice)})
        return
    per = advice.capacity_per_worker_per_s
    click.echo(
        f"{advice.reason}\narrivals {advice.arrival_per_s:.1f}/s, processed "
        f"{load.processed_per_s:.1f}/s by {load.workers} workers "
        f"({load.utilisation:.0%} busy, {'-' if per is None else f'{per:.1f}/s'} each at "
        f"full load), ready {load.backlog_before} -> {load.backlog_after} over "
        f"{load.window_s:.1f}s, backlog clears in "
        f"{'never at this rate' if advice.drain_eta_s is None else span(advice.drain_eta_s)}"
    )
