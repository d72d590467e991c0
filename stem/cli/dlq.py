"""``stem dlq list|show|replay|purge``: the dead-letter queue of each queue.

Without ``--queue`` every known queue is looked at. Entries are named by their entry id
(``1700000000000-0``) or by the id of the job they hold.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from stem.broker.keys import check_name
from stem.cli import output
from stem.cli.output import (
    Column,
    echo_json,
    emit,
    emit_done,
    emit_record,
    iso_ms,
    one_line,
)
from stem.cli.result import error_text
from stem.cli.root import State
from stem.errors import ConfigError, JobNotFound, UsageError
from stem.signing import Signer, unsigned
from stem.states import DeadReason

if TYPE_CHECKING:
    from stem.broker import Admin, DeadEntry

#: Entries read per round trip when paging through a whole dead-letter queue.
PAGE = 500
BAD_SIGNATURE = DeadReason.BAD_SIGNATURE.value

LIST_COLUMNS = [
    Column("entry_id", "ENTRY"),
    Column("queue", "QUEUE"),
    Column("job_id", "JOB", lambda v: v or "-"),
    Column("task", "TASK", lambda v: v or "-"),
    Column("state", "STATE"),
    Column("reason", "REASON"),
    Column("ts_ms", "WHEN", iso_ms, label="when"),
    Column("error", "ERROR", lambda e: "-" if e is None else error_text(e, None), width=80),
]


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw


def entry_doc(queue: str, entry: DeadEntry) -> dict[str, Any]:
    """What ``--json`` shows about one dead-letter entry."""
    envelope = _loads(entry.envelope)
    task = envelope.get("task") if isinstance(envelope, dict) else None
    return {
        "entry_id": entry.entry_id,
        "queue": queue,
        "job_id": entry.job_id or None,
        "task": task if isinstance(task, str) else None,
        "state": entry.state,
        "reason": entry.reason,
        "ts_ms": entry.ts_ms,
        "error": _loads(entry.error),
        "envelope": envelope,
    }


def _queues(state: State, queue: str | None) -> list[str]:
    if queue is not None:
        return [check_name("queue name", queue)]
    return state.app.broker.queues()


def all_entries(broker: Admin, queue: str, limit: int | None) -> list[DeadEntry]:
    """Newest-first entries of ``queue``'s DLQ, up to ``limit`` (None: all), page by page."""
    out: list[DeadEntry] = []
    before = "+"
    while limit is None or len(out) < limit:
        want = PAGE if limit is None else min(PAGE, limit - len(out))
        page = broker.dead_entries(queue, count=want, before=before)
        out += page
        if len(page) < want:
            break
        before = "(" + page[-1].entry_id
    return out


def find_entry(state: State, key: str, queue: str | None) -> tuple[str, DeadEntry]:
    """The (queue, entry) that ``key`` (entry or job id) names; one match or an error."""
    broker: Admin = state.app.broker
    found = [(q, e) for q in _queues(state, queue) if (e := broker.dead_entry(q, key))]
    if not found:
        where = f"queue {queue!r}" if queue else "any queue"
        raise JobNotFound(f"no dead-letter entry {key} in {where}", job_id=key)
    if len(found) > 1:
        names = ", ".join(q for q, _ in found)
        raise UsageError(f"{key} is in the dead-letter queue of {names}: pick one with --queue")
    return found[0]


@click.group(
    name="dlq",
    epilog="""Examples:

\b
  stem dlq list
  stem dlq show 01b8dac5b4009f3c2a7e5d1b8c460e27
  stem dlq replay 01b8dac5b4009f3c2a7e5d1b8c460e27
  stem dlq purge --queue default --yes
""",
)
def dlq() -> None:
    """Inspect, replay and purge the dead-letter queue.

    Jobs that failed for good (retries exhausted, not retryable) or could not run
    (undecodable, unknown task, poison) wait here with the reason, until replayed,
    purged, or trimmed by retention.
    """


@dlq.command(
    name="list",
    epilog="""Examples:

\b
  stem dlq list
  stem dlq list --queue default --limit 10 --json | jq '.[].job_id'
""",
)
@click.option("--queue", help="Only this queue.", show_default="every known queue")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many entries per queue, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (with envelopes).")
@click.pass_obj
def list_entries(state: State, queue: str | None, limit: int, as_json: bool) -> None:
    """List dead-letter entries, newest first: job, task, reason and error."""
    broker: Admin = state.app.broker
    docs = [entry_doc(q, e) for q in _queues(state, queue) for e in all_entries(broker, q, limit)]
    emit(docs, LIST_COLUMNS, as_json=as_json, empty="the dead-letter queue is empty")


@dlq.command(
    name="show",
    epilog="""Examples:

\b
  stem dlq show 01b8dac5b4009f3c2a7e5d1b8c460e27                 # by job id
  stem dlq show 1700000000000-0 --queue default --json
""",
)
@click.argument("key", metavar="ENTRY_OR_JOB_ID")
@click.option("--queue", help="The queue.", show_default="search every known queue")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_obj
def show(state: State, key: str, queue: str | None, as_json: bool) -> None:
    """Show one dead-letter entry: envelope, reason and the full error."""
    doc = entry_doc(*find_entry(state, key, queue))
    if as_json:
        echo_json(doc)
        return
    fields = show_fields(doc)
    trace = doc["error"].get("traceback") if isinstance(doc["error"], dict) else None
    if not output.stdout_is_tty():
        emit_record(
            doc, [*fields, ("traceback", str(trace).rstrip() if trace else "-")], as_json=False
        )
        return
    emit_record(doc, fields, as_json=False)
    if trace:
        click.echo("traceback:\n" + str(trace).rstrip())


def show_fields(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of ``stem dlq show`` without ``--json``, entry id first."""
    envelope = doc["envelope"] if isinstance(doc["envelope"], dict) else {}
    fields = [
        ("entry", doc["entry_id"]),
        ("queue", doc["queue"]),
        ("job", doc["job_id"] or "-"),
        ("task", doc["task"] or "-"),
        ("state", doc["state"]),
        ("reason", doc["reason"]),
        ("when", iso_ms(doc["ts_ms"])),
        ("args", json.dumps(envelope.get("args"))),
        ("kwargs", json.dumps(envelope.get("kwargs"))),
        ("error", "-" if doc["error"] is None else error_text(doc["error"], None)),
    ]
    if not envelope:
        fields.append(("raw", one_line(json.dumps(doc["envelope"]), None)))
    return fields


@dlq.command(
    name="replay",
    epilog="""Examples:

\b
  stem dlq replay 01b8dac5b4009f3c2a7e5d1b8c460e27 1700000000000-0   # by job or entry id
  stem dlq replay --all --queue default
  stem dlq replay --resign 01b8dac5b4009f3c2a7e5d1b8c460e27          # a bad-signature job

A replayed job keeps its id and goes back on its queue as a fresh attempt. An entry
dead-lettered for `bad-signature` is refused (nothing is replayed) unless --resign signs
it again with the current key of the app's signing keys ($STEM_SIGNING_KEYS,
$STEM_SIGNING_KEY_ID): only do that once you know where its envelope came from.
""",
)
@click.argument("keys", nargs=-1, metavar="[ENTRY_OR_JOB_ID]...")
@click.option("--all", "replay_all", is_flag=True, help="Replay every entry.")
@click.option("--queue", help="The queue.", show_default="every known queue")
@click.option(
    "--resign",
    is_flag=True,
    help="Sign each replayed envelope again with the app's current signing key.",
)
@click.option("--json", "as_json", is_flag=True, help='Print [{"job_id", "queue"}, ...].')
@click.pass_obj
def replay(
    state: State,
    keys: tuple[str, ...],
    replay_all: bool,
    queue: str | None,
    resign: bool,
    as_json: bool,
) -> None:
    """Put dead-letter entries back on their queues; print the replayed job ids."""
    if bool(keys) == replay_all:
        raise click.UsageError("give entry or job ids, or --all (not both)")
    signer = state.app.signer
    if resign and (signer is None or signer.current is None):
        raise ConfigError(
            "--resign needs a signing key: set $STEM_SIGNING_KEYS and $STEM_SIGNING_KEY_ID "
            "(or the app's signing_keys and signing_key_id)"
        )
    broker: Admin = state.app.broker
    chosen = _chosen(state, broker, keys, replay_all, queue)
    if not resign:
        _refuse_bad_signatures(chosen)
    replayed: list[dict[str, str]] = []
    for q, entries in chosen.items():
        for start in range(0, len(entries), PAGE):
            page = entries[start : start + PAGE]
            envelopes = _resigned(signer, q, page) if resign and signer is not None else None
            for job_id in broker.replay(q, [e.entry_id for e in page], envelopes):
                if not as_json:
                    click.echo(job_id)
                replayed.append({"job_id": job_id, "queue": q})
    if as_json:
        echo_json(replayed)
    skipped = sum(len(entries) for entries in chosen.values()) - len(replayed)
    if skipped:
        click.echo(
            f"stem: note: {skipped} entr{'y' if skipped == 1 else 'ies'} not replayed "
            "(no usable envelope, or already gone): see `stem dlq show`",
            err=True,
        )
    elif not replayed:
        click.echo("nothing to replay", err=True)


def _chosen(
    state: State, broker: Admin, keys: tuple[str, ...], replay_all: bool, queue: str | None
) -> dict[str, list[DeadEntry]]:
    """The entries to replay, per queue, oldest first for ``--all``."""
    chosen: dict[str, list[DeadEntry]] = {}
    if replay_all:
        for q in _queues(state, queue):
            chosen[q] = list(reversed(all_entries(broker, q, None)))
        return chosen
    # Resolve every id first: an unknown one replays nothing.
    for key in keys:
        q, entry = find_entry(state, key, queue)
        chosen.setdefault(q, []).append(entry)
    return chosen


def _refuse_bad_signatures(chosen: dict[str, list[DeadEntry]]) -> None:
    """Refuse, before anything is replayed, entries whose signature a worker refused."""
    bad = [e for entries in chosen.values() for e in entries if e.reason == BAD_SIGNATURE]
    if bad:
        first = bad[0].job_id or bad[0].entry_id
        raise UsageError(
            f"{len(bad)} of the entries ({first}{', ...' if len(bad) > 1 else ''}) were "
            "dead-lettered for a bad signature: check where they came from, then replay "
            "them with --resign to sign them with the current key"
        )


def _resigned(signer: Signer, queue: str, entries: list[DeadEntry]) -> dict[str, str]:
    """Entry id -> its envelope signed with ``signer``'s current key (entries whose
    envelope is not a JSON object are left to replay, which keeps them put)."""
    out = {}
    for e in entries:
        body = unsigned(e.envelope)
        if e.job_id and body.startswith("{") and body.endswith("}"):
            out[e.entry_id] = signer.sign(e.job_id, queue, body)
    return out


@dlq.command(
    name="purge",
    epilog="""Examples:

\b
  stem dlq purge --queue default --yes
  stem dlq purge --yes                    # every queue's dead-letter queue
""",
)
@click.option("--queue", help="Only this queue.", show_default="every known queue")
@click.option("--yes", is_flag=True, help="Really delete (required).")
@click.option("--json", "as_json", is_flag=True, help='Print [{"queue", "purged"}, ...].')
@click.pass_obj
def purge(state: State, queue: str | None, yes: bool, as_json: bool) -> None:
    """Delete dead-letter entries for good (their job records stay until they expire)."""
    if not yes:
        what = f"queue {queue!r}" if queue else "every queue"
        raise click.UsageError(
            f"purge deletes the dead-letter entries of {what} for good: add --yes"
        )
    broker: Admin = state.app.broker
    counts = [(q, broker.purge_dead(q)) for q in _queues(state, queue)]
    if as_json:
        echo_json([{"queue": q, "purged": n} for q, n in counts])
        return
    for q, n in counts:
        sentence = f"purged {n} entr{'y' if n == 1 else 'ies'} from {q!r}"
        doc = {"queue": q, "purged": n}
        emit_done(sentence, doc, [("queue", q), ("purged", str(n))], as_json=False)
