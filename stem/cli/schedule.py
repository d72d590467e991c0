"""``stem schedule ...``: manage beat entries at run time (``stem beat`` is in ``actors``).

The root CLI lists the group (``stem.cli.COMMANDS``, loaded when it runs) and passes its
:class:`~stem.cli.root.State`, whose ``app`` is the :class:`~stem.Stem` connected to the
chosen Redis and namespace. Tables and times are printed with the helpers of
:mod:`stem.cli.output`. Errors are raised as :class:`UsageError` / :class:`ConfigError`
(the root prints one line and exits 2), ``NotFound`` for an unknown entry name (exit 4)
or ``BrokerUnavailable``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
from typing import Any

import click

from stem.beat.store import RunRecord, Schedules, StoredEntry
from stem.cli import output
from stem.cli.output import emit_done, examples, plain_line, say, table, when
from stem.cli.output import now_ms as current_ms
from stem.cli.root import State
from stem.errors import ConfigError
from stem.schedule.config import load_entries_from_toml
from stem.schedule.entries import Entry, entry_from_mapping
from stem.schedule.schedules import Cron, Interval
from stem.schedule.ticks import fire_at_ms, next_ticks
from stem.schedule.wallclock import from_ms, to_ms

#: How many upcoming fire times ``show`` prints.
NEXT_COUNT = 5


def _schedules(state: State) -> Schedules:
    return Schedules(state.app.broker)


def describe_schedule(entry: Entry) -> str:
    """``every 30s``, ``cron '*/5 * * * *' Europe/Berlin`` or ``at <time>``."""
    schedule = entry.schedule
    if isinstance(schedule, Interval):
        text = f"every {schedule.every_s:g}s"
        if schedule.start_at is not None:
            text += f" from {schedule.start_at.isoformat()}"
        return text
    if isinstance(schedule, Cron):
        return f"cron '{schedule.expr}' {schedule.tz}"
    return f"at {schedule.at.isoformat()}"


def _next_fires(entry: Entry, now_ms: int, n: int) -> list[int]:
    # Ticks fire in order, and jitter may move a tick that is already past (its fire
    # time still ahead) after now: start one grace-and-jitter window back.
    back_ms = round((entry.jitter_s + entry.grace_s) * 1000)
    ticks = next_ticks(entry, from_ms(now_ms - back_ms), n + 64)
    fires = [fire_at_ms(entry, to_ms(t)) for t in ticks]
    return [f for f in fires if f > now_ms][:n]


def _enabled_text(stored: StoredEntry) -> str:
    text = "yes" if stored.enabled else "no"
    if stored.switched is not None and stored.switched != stored.entry.enabled:
        text += f" (switched {'on' if stored.enabled else 'off'} by an operator)"
    return text


def _entry_json(stored: StoredEntry, record: RunRecord, now_ms: int, n: int) -> dict[str, Any]:
    entry_doc = json.loads(stored.entry.to_json())
    entry_doc.pop("v", None)
    return {
        "name": stored.name,
        "source": stored.source.value,
        "enabled": stored.enabled,
        "switched": stored.switched,
        "entry": entry_doc,
        "next_fire_ms": _next_fires(stored.entry, now_ms, n) if stored.enabled else [],
        **record.to_dict(),
    }


# -- the group --------------------------------------------------------------------------


@click.group(
    name="schedule",
    epilog="""Example:

\b
  stem schedule list
  stem schedule add cleanup app.tasks.cleanup --every 300 --jitter 30
  stem schedule show cleanup
  stem schedule disable cleanup
""",
)
def schedule() -> None:
    """Manage beat's schedule entries at run time.

    Entries live in Redis. Those declared in code (app.schedule) and in stem.toml are
    synced there when a beat starts; `add` stores more. Every running beat re-reads the
    store each second, so changes take effect at once, on every host.
    """


@schedule.command(
    name="list",
    epilog=examples("stem schedule list", "stem schedule list --json | jq '.[].name'"),
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_entries(state: State, as_json: bool) -> None:
    """List every entry: source, state, schedule, next fire time and last run."""
    snapshot = _schedules(state).snapshot()
    now_ms = current_ms()
    empty = RunRecord()
    if as_json:
        docs = [
            _entry_json(s, snapshot.records.get(name, empty), now_ms, 1)
            for name, s in sorted(snapshot.entries.items())
        ]
        docs += [{"name": n, "error": str(e)} for n, e in sorted(snapshot.errors.items())]
        click.echo(json.dumps(docs, indent=2))
        return
    rows: list[list[str]] = []
    for name, stored in sorted(snapshot.entries.items()):
        record = snapshot.records.get(name, empty)
        upcoming = _next_fires(stored.entry, now_ms, 1) if stored.enabled else []
        last = record.last_run
        rows.append(
            [
                name,
                stored.source.value,
                "yes" if stored.enabled else "no",
                describe_schedule(stored.entry),
                stored.entry.task,
                when(upcoming[0] if upcoming else None),
                "-" if last is None else when(last.fired_at_ms),
            ]
        )
    header = ["NAME", "SOURCE", "ENABLED", "SCHEDULE", "TASK", "NEXT FIRE", "LAST RUN"]
    if not rows:
        say("no schedule entries")
    elif output.stdout_is_tty():
        click.echo(table(header, rows))
    else:
        keys = [h.lower().replace(" ", "_") for h in header]
        for row in rows:
            click.echo(plain_line(keys, row))
    for error in snapshot.errors.values():
        click.echo(f"bad: {error}", err=True)


@schedule.command(
    name="show",
    epilog=examples(
        "stem schedule show nightly-report", "stem schedule show nightly-report --json"
    ),
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_obj
def show(state: State, name: str, as_json: bool) -> None:
    """Show one entry: its definition, the next five fire times and the last run."""
    schedules = _schedules(state)
    stored = schedules.get(name)
    record = schedules.record(name)
    now_ms = current_ms()
    if as_json:
        click.echo(json.dumps(_entry_json(stored, record, now_ms, NEXT_COUNT), indent=2))
        return
    if not output.stdout_is_tty():
        click.echo(_show_line(stored, record, now_ms))
        return
    entry = stored.entry
    lines = [
        ("name", entry.name),
        ("task", entry.task),
        ("source", stored.source.value),
        ("enabled", _enabled_text(stored)),
        ("schedule", describe_schedule(entry)),
        ("queue", entry.queue or "(the task's)"),
        ("priority", "(the task's)" if entry.priority is None else str(entry.priority)),
        ("args", json.dumps(list(entry.args))),
        ("kwargs", json.dumps(dict(entry.kwargs))),
        ("jitter", f"{entry.jitter_s:g}s"),
        ("missed", f"{entry.missed.value} (grace {entry.grace_s:g}s)"),
    ]
    width = max(len(k) for k, _ in lines) + 1
    for key, value in lines:
        click.echo(f"{key + ':':<{width}} {value}")
    fires = _next_fires(entry, now_ms, NEXT_COUNT)
    click.echo(f"next {len(fires)} fire times:" + ("" if stored.enabled else " (when enabled)"))
    for fire in fires:
        local = ""
        if isinstance(entry.schedule, Cron) and entry.schedule.tz != "UTC":
            wall = from_ms(fire).astimezone(entry.schedule.zone)
            local = f"  = {wall.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        click.echo(f"  {when(fire, now_ms)}{local}")
    click.echo(_last_run_text(record, now_ms))


def _show_line(stored: StoredEntry, record: RunRecord, now_ms: int) -> str:
    """``stem schedule show`` in a pipe: one plain line."""
    entry, run = stored.entry, record.last_run
    fields = [
        ("name", entry.name),
        ("task", entry.task),
        ("source", stored.source.value),
        ("enabled", "yes" if stored.enabled else "no"),
        ("switched", "-" if stored.switched is None else ("on" if stored.switched else "off")),
        ("schedule", describe_schedule(entry)),
        ("queue", entry.queue or "-"),
        ("priority", "-" if entry.priority is None else str(entry.priority)),
        ("args", json.dumps(list(entry.args))),
        ("kwargs", json.dumps(dict(entry.kwargs))),
        ("jitter_s", f"{entry.jitter_s:g}"),
        ("missed", entry.missed.value),
        ("grace_s", f"{entry.grace_s:g}"),
        ("next_fires", ",".join(when(f) for f in _next_fires(entry, now_ms, NEXT_COUNT))),
        ("last_run", "-" if run is None else when(run.fired_at_ms)),
        ("last_job", "-" if run is None else run.job_id),
    ]
    return plain_line([k for k, _ in fields], [v for _, v in fields])


def _last_run_text(record: RunRecord, now_ms: int) -> str:
    run = record.last_run
    if run is None:
        return "last run: never"
    what = "manual run" if run.manual else f"tick {when(run.tick_ms)}"
    if run.catch_up:
        what += " (catch-up)"
    text = f"last run: {when(run.fired_at_ms, now_ms)}, {what}, job {run.job_id}"
    if run.drift_ms is not None:
        text += f", drift {run.drift_ms} ms"
    text += f", by {run.by}"
    if record.drifts_ms:
        median = statistics.median(record.drifts_ms)
        text += (
            f"\ndrift:    median {median:g} ms, max {max(record.drifts_ms)} ms "
            f"over the last {len(record.drifts_ms)} ticks"
        )
    return text


@schedule.command(
    name="add",
    epilog="""Examples:

\b
  stem schedule add cleanup app.tasks.cleanup --every 300 --jitter 30
  stem schedule add nightly app.tasks.report --cron "30 2 * * *" --tz Europe/Berlin \\
      --kwargs '{"format": "pdf"}' --missed run_once
  stem schedule add fast app.tasks.poll --cron "*/10 * * * * *"   # 6 fields: seconds first
  stem schedule add once app.tasks.migrate --at 2030-01-01T00:00:00Z
""",
)
@click.argument("name")
@click.argument("task")
@click.option("--every", "every_s", type=float, help="Interval in seconds.")
@click.option("--start-at", help="Anchor of an interval's grid (ISO 8601 with offset).")
@click.option("--cron", help="Cron expression: 5 fields, or 6 with seconds first.")
@click.option("--tz", help="IANA time zone of a cron expression.", show_default="UTC")
@click.option("--at", help="One-off: an ISO 8601 date-time with offset.")
@click.option("--args", "args_json", help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", help="Keyword arguments as a JSON object.")
@click.option("--queue", help="Queue.", show_default="the task's")
@click.option(
    "--priority", type=click.IntRange(0, 9), help="Higher runs first.", show_default="the task's"
)
@click.option(
    "--jitter", "jitter_s", type=float, help="Delay each tick by up to this many seconds."
)
@click.option(
    "--grace", "grace_s", type=float, help="How late a tick may still fire (s).", show_default="10"
)
@click.option("--missed", type=click.Choice(["skip", "run_once"]), help="Fate of missed ticks.")
@click.option("--disabled", is_flag=True, help="Store it switched off.")
@click.option("--replace", is_flag=True, help="Replace an entry of that name added by the CLI.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored entry as JSON.")
@click.pass_obj
def add(
    state: State, /, name: str, task: str, replace: bool, as_json: bool, **options: Any
) -> None:
    """Add an entry NAME that enqueues TASK: give one of --every, --cron or --at."""
    data: dict[str, Any] = {"name": name, "task": task}
    for key in ("args", "kwargs"):
        raw = options.pop(f"{key}_json")
        if raw is not None:
            try:
                data[key] = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(f"--{key} is not valid JSON: {exc}") from None
    if options.pop("disabled"):
        data["enabled"] = False
    data.update({k: v for k, v in options.items() if v is not None})
    entry = entry_from_mapping(data)
    _schedules(state).add(entry, replace_existing=replace)
    _done(
        f"added {name!r}: {describe_schedule(entry)} -> {task}",
        name,
        "added",
        as_json,
        schedule=describe_schedule(entry),
        task=task,
    )


def _done(sentence: str, name: str, action: str, as_json: bool, **more: str) -> None:
    """What a `stem schedule` action did: a sentence, a plain line or a JSON object."""
    doc = {"name": name, "action": action, **more}
    fields = [(k, str(v)) for k, v in doc.items()]
    emit_done(sentence, doc, fields, as_json=as_json)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")


@schedule.command(name="remove", epilog=examples("stem schedule remove cleanup"))
@click.argument("name")
@_json_option
@click.pass_obj
def remove(state: State, name: str, as_json: bool) -> None:
    """Remove entry NAME and its run record (exit code 4 if there is none)."""
    removed = _schedules(state).remove(name)
    _done(f"removed {name!r}", name, "removed", as_json)
    if isinstance(removed, StoredEntry) and removed.source.value != "cli":
        click.echo(
            f"note: {name!r} is declared in {removed.source.value}; the next beat that starts "
            "adds it again (remove it there, or use `stem schedule disable`)",
            err=True,
        )


@schedule.command(name="enable", epilog=examples("stem schedule enable cleanup"))
@click.argument("name")
@_json_option
@click.pass_obj
def enable(state: State, name: str, as_json: bool) -> None:
    """Switch entry NAME on (the switch survives beat restarts and syncs)."""
    _schedules(state).set_enabled(name, True)
    _done(f"enabled {name!r}", name, "enabled", as_json)


@schedule.command(name="disable", epilog=examples("stem schedule disable cleanup"))
@click.argument("name")
@_json_option
@click.pass_obj
def disable(state: State, name: str, as_json: bool) -> None:
    """Switch entry NAME off: running beats stop firing it within a second."""
    _schedules(state).set_enabled(name, False)
    _done(f"disabled {name!r}", name, "disabled", as_json)


@schedule.command(
    name="run",
    epilog=examples("stem schedule run nightly-report", "stem schedule run nightly-report --json"),
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the job as a JSON object.")
@click.pass_obj
def run_now(state: State, name: str, as_json: bool) -> None:
    """Enqueue entry NAME's task now (a manual run, with a new job id).

    The run is recorded as the entry's last run (manual); its ticks are unaffected.
    """
    # Late import: the service pulls in trio and the actor runtime.
    from stem.beat.service import enqueue_entry

    app = state.app
    schedules = Schedules(app.broker)
    entry = schedules.get(name).entry
    handle = enqueue_entry(app, entry)
    schedules.record_manual(name, handle.id, f"cli/{socket.gethostname()}/{os.getpid()}")
    _done(
        f"enqueued {handle.id} on {handle.queue!r} (manual run of {name!r})",
        name,
        "run",
        as_json,
        job_id=handle.id,
        queue=handle.queue,
    )


@schedule.command(
    name="check",
    epilog=examples("stem schedule check stem.toml"),
)
@click.argument("path", default="stem.toml", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help='Print {"path", "entries"}.')
def check(path: str, as_json: bool) -> None:
    """Check the [[schedule]] entries of a stem.toml (default ./stem.toml).

    Prints one line per bad entry and exits 2 if there is any.
    """
    entries, errors = load_entries_from_toml(path)
    for error in errors:
        click.echo(f"{path}: {error}", err=True)
    if errors:
        raise ConfigError(
            f"{path}: {len(errors)} bad schedule entr{'y' if len(errors) == 1 else 'ies'}"
        )
    n = len(entries)
    doc = {"path": path, "entries": n}
    sentence = f"{path}: {n} schedule entr{'y' if n == 1 else 'ies'}, all good"
    emit_done(sentence, doc, [("path", path), ("entries", str(n))], as_json=as_json)
