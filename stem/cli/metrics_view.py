"""The forms of ``stem observe metrics``: the JSON snapshot, plain lines for a pipe and the
full-screen table of the live view. The numbers come from :mod:`stem.observe.live`."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from typing import Any

from stem.cli.output import Column, now_ms, plain_line, table
from stem.observe.live import Totals, Window

#: The per-queue and per-task figures, in order: (key, table header).
FIGURES = [
    ("processed_per_s", "RATE"),
    ("failed_per_s", "FAILED"),
    ("retried_per_s", "RETRIED"),
    ("wait_p50_s", "WAIT P50"),
    ("wait_p99_s", "WAIT P99"),
    ("run_p50_s", "RUN P50"),
    ("run_p99_s", "RUN P99"),
]
#: What only a queue has (a task row shows nothing there).
QUEUE_ONLY = [("ready", "READY"), ("dead", "DLQ"), ("pending", "IN FLIGHT"), ("workers", "WORKERS")]


def metrics_doc(
    queues: Sequence[dict[str, Any]],
    workers: Sequence[dict[str, Any]],
    window: Window,
    actors: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One snapshot: queue depths, live workers and other actors (by kind) now, rates and
    percentiles from ``window`` per queue, per task and per worker."""
    stats = window.stats()
    serving = {q: sum(q in (w.get("queues") or []) for w in workers) for q in _names(queues)}
    qs = [
        {**q, "workers": serving[q["queue"]], **stats.queues.get(q["queue"], Totals()).doc()}
        for q in queues
    ]
    tasks = [
        {"task": task, "queue": queue, **totals.doc()}
        for (queue, task), totals in sorted(stats.tasks.items())
    ]
    totals = {k: sum(q[k] for q in queues) for k in ("ready", "delayed", "pending", "dead")}
    totals["workers"] = len(workers)
    totals["in_flight"] = sum(int(w.get("in_flight", 0) or 0) for w in workers)
    return {
        "ts_ms": now_ms(),
        "totals": totals,
        "rates": {
            "interval_s": round(stats.window_s, 3),
            "processed_per_s": sum(r["processed_per_s"] for r in stats.workers.values()),
            "failed_per_s": sum(r["failed_per_s"] for r in stats.workers.values()),
            "workers": stats.workers,
        },
        "actors": dict(actors or {}),
        "queues": qs,
        "tasks": tasks,
        "workers": list(workers),
    }


def _names(queues: Sequence[dict[str, Any]]) -> list[str]:
    return [str(q["queue"]) for q in queues]


def _rate(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}/s"


def duration(value: Any) -> str:
    """A percentile for people: ``850us``, ``12ms``, ``1.25s``, ``-`` for none."""
    if value is None:
        return "-"
    if value < 0.001:
        return f"{value * 1e6:.0f}us"
    if value < 1:
        return f"{value * 1000:.0f}ms" if value >= 0.01 else f"{value * 1000:.1f}ms"
    return f"{value:.2f}s"


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if value >= 0.001 or value == 0 else f"{value:.6f}"
    return str(value)


def metrics_lines(doc: dict[str, Any], worker_columns: Sequence[Column]) -> list[str]:
    """A snapshot as plain lines: ``totals ...``, then ``queue:NAME ...`` per queue,
    ``task:NAME queue=...`` per task and ``worker:ID ...`` per worker (``grep ^task:``
    picks one kind)."""
    t, r = doc["totals"], doc["rates"]
    totals = {
        **t,
        "processed_per_s": f"{r['processed_per_s']:.3f}",
        "failed_per_s": f"{r['failed_per_s']:.3f}",
        "interval_s": f"{r['interval_s']:g}",
    }
    totals |= doc.get("actors", {})
    lines = [plain_line(["totals", *totals], ["totals", *(str(v) for v in totals.values())])]
    queue_keys = ["ready", "delayed", "pending", "dead", "paused", "throttled", "limiter"]
    queue_keys.append("workers")
    figure_keys = [k for k, _ in FIGURES]
    for q in doc["queues"]:
        keys = ["queue", *queue_keys, *figure_keys]
        values = [f"queue:{q['queue']}", *(_plain(q.get(k)) for k in keys[1:])]
        lines.append(plain_line(keys, values))
    for task in doc["tasks"]:
        keys = ["task", "queue", *figure_keys]
        values = [f"task:{task['task']}", *(_plain(task.get(k)) for k in keys[1:])]
        lines.append(plain_line(keys, values))
    cols = [
        *worker_columns[:1],
        Column("processed_per_s", "RATE", _plain),
        *worker_columns[1:],
    ]
    for w in doc["workers"]:
        row = {**w, "processed_per_s": r["workers"].get(w.get("id"), {}).get("processed_per_s")}
        texts = [c.show(row.get(c.key)) for c in cols]
        lines.append(plain_line([c.plain_key for c in cols], [f"worker:{texts[0]}", *texts[1:]]))
    return lines


def _figures(row: dict[str, Any]) -> list[str]:
    return [_rate(row.get(k)) if k.endswith("_per_s") else duration(row.get(k)) for k, _ in FIGURES]


def render_metrics(doc: dict[str, Any], worker_columns: Sequence[Column]) -> str:
    """The table form: a summary line, one table of queues with their tasks under them
    (rates, wait and run p50/p99, failures, DLQ, in flight, workers), then the workers."""
    t, r = doc["totals"], doc["rates"]
    head = (
        f"jobs: {r['processed_per_s']:.1f}/s processed, {r['failed_per_s']:.1f}/s failed "
        f"(over {r['interval_s']:g}s) | ready {t['ready']}, delayed {t['delayed']}, "
        f"pending {t['pending']}, dead {t['dead']} | workers {t['workers']}, "
        f"holding {t['in_flight']}"
    )
    if doc.get("actors"):
        head += " | " + ", ".join(f"{kind} {n}" for kind, n in doc["actors"].items())
    parts = [head]
    if doc["queues"] or doc["tasks"]:
        header = ["QUEUE", "TASK", *(h for _, h in FIGURES), *(h for _, h in QUEUE_ONLY)]
        rows: list[list[str]] = []
        for q in doc["queues"]:
            rows.append(
                [q["queue"], "(all)", *_figures(q), *(str(q.get(k, "-")) for k, _ in QUEUE_ONLY)]
            )
            for task in (x for x in doc["tasks"] if x["queue"] == q["queue"]):
                rows.append(["", task["task"], *_figures(task), *([""] * len(QUEUE_ONLY))])
        parts += ["", table(header, rows)]
    if doc["workers"]:
        cols = [*worker_columns[:1], Column("rate", "RATE", _rate), *worker_columns[3:]]
        per = r["workers"]
        rows = [
            [
                c.show({**w, "rate": per.get(w.get("id"), {}).get("processed_per_s")}.get(c.key))
                for c in cols
            ]
            for w in doc["workers"]
        ]
        parts += ["", table([c.header for c in cols], rows)]
    return "\n".join(parts)


#: The terminal's alternate screen (what ``top`` and ``less`` use) and a hidden cursor:
#: the live view leaves the scrollback as it found it.
ENTER_SCREEN = "\x1b[?1049h\x1b[?25l"
LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l"


def frame(
    text: str,
    interval_s: float,
    window_s: float,
    height: int | None = None,
    width: int | None = None,
) -> str:
    """One screenful: cursor home, a title line, ``text`` cut to the terminal's height
    and width (a wrapped line would scroll the frame), each line cleared to its end and
    the rest of the screen cleared (no flicker)."""
    size = shutil.get_terminal_size()
    rows = height if height is not None else size.lines
    cols = width if width is not None else size.columns
    title = (
        f"stem observe metrics   {time.strftime('%H:%M:%S')}   refreshes every "
        f"{interval_s:g}s, rates over the last {window_s:g}s   Ctrl-C to quit"
    )
    lines = [title, "", *text.splitlines()]
    if len(lines) > rows - 1:
        hidden = len(lines) - (rows - 2)
        lines = [*lines[: rows - 2], f"... {hidden} more lines (a taller terminal shows them)"]
    return "\x1b[H" + "".join(f"{line[:cols]}\x1b[K\n" for line in lines) + "\x1b[J"
