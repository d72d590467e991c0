"""``stem observe signing``: how many stored jobs each signing key id signed.

The rotation check: a key may leave every process once no job signed with it is left
anywhere it could still run from: ready, pending (held by workers), delayed (delays and
retries) or the dead-letter queue (a replay would need it).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import click

from stem.cli.output import Column, emit
from stem.cli.root import State
from stem.signing import key_id_of

if TYPE_CHECKING:
    from stem.broker import Admin

#: Where a stored envelope can be, in the order the columns show them.
PLACES = ("ready", "pending", "delayed", "dead")
UNSIGNED = "-"

SIGNING_COLUMNS = [
    Column("key_id", "KEY ID", lambda v: UNSIGNED if v is None else str(v)),
    *(Column(p, p.upper()) for p in PLACES),
    Column("total", "TOTAL"),
]


def _label(envelope: bytes) -> str:
    return key_id_of(envelope) or UNSIGNED


def signing_docs(broker: Admin, queues: list[str]) -> list[dict[str, Any]]:
    """One row per key id (``key_id`` None: unsigned jobs), counts summed over ``queues``."""
    counts: Counter[tuple[str, str]] = Counter()
    for q in queues:
        counts.update(broker.count_envelopes(q, _label))
    rows: dict[str, dict[str, Any]] = {}
    for (place, kid), n in sorted(counts.items()):
        row = rows.setdefault(kid, {"key_id": None if kid == UNSIGNED else kid,
                                    **dict.fromkeys(PLACES, 0), "total": 0})  # fmt: skip
        row[place] += n
        row["total"] += n
    return [rows[k] for k in sorted(rows)]


@click.command(
    name="signing",
    epilog="""Examples:

\b
  stem observe signing
  stem observe signing --queue default --json | jq '.[] | select(.key_id == "k1") | .total'

Rotation: give every process the new key, switch producers to it (STEM_SIGNING_KEY_ID),
then remove the old key once its TOTAL here is 0 (or no row names it). KEY ID "-" (null
in JSON) counts unsigned jobs. The key id is what each envelope claims; workers check it.
""",
)
@click.option("--queue", help="Only this queue.", show_default="every known queue")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def signing(state: State, queue: str | None, as_json: bool) -> None:
    """Jobs per signing key id: ready, pending, delayed and dead-lettered."""
    broker: Admin = state.app.broker
    queues = [queue] if queue is not None else broker.queues()
    docs = signing_docs(broker, queues)
    emit(docs, SIGNING_COLUMNS, as_json=as_json, empty="no stored jobs")
