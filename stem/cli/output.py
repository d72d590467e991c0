"""How commands print: a table on a terminal, plain lines in a pipe, JSON with ``--json``.

A command builds its rows as JSON-ready dicts and describes the columns once; ``emit``
picks the form. Plain lines put the first column first and the others as ``key=value``
(values with spaces are JSON-quoted), so ``grep`` and ``awk`` work on them::

    default ready=3 delayed=0 pending=1 dead=2

Every line a command prints on stdout in a pipe matches :data:`PLAIN_LINE`; anything
for people only (a summary, "nothing to show", a note) goes to stderr there. One record
(``emit_record``) is one such line; an action's outcome (``emit_done``) too, with a
sentence instead on a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

_WORD = r'(?:[^\s"=]\S*|"(?:[^"\\]|\\.)*")'
#: The form of every stdout line in a pipe: a first value, then ``key=value`` pairs; a
#: value is one word without quotes, or a JSON string (documented in docs/reference/cli.md).
PLAIN_LINE = re.compile(rf"^{_WORD}(?: [a-z][a-z0-9_]*=(?:{_WORD})?)*$")


def stdout_is_tty() -> bool:
    """Whether stdout is a terminal (tests patch this to see the table form)."""
    return sys.stdout.isatty()


def now_ms() -> int:
    """Wall-clock time in milliseconds (heartbeats and DLQ entries are stamped so)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Column:
    """One column: the row key, its table header, how to show a value as text, and its
    key in plain lines (``label``; default ``key``, set it when ``show`` changes units),
    and how wide it may be in a table."""

    key: str
    header: str
    show: Callable[[Any], str] = lambda value: "-" if value is None else str(value)
    label: str | None = None
    #: In a table, cut the text at a word boundary to at most this many characters
    #: (plain lines and JSON always carry all of it).
    width: int | None = None

    @property
    def plain_key(self) -> str:
        """The key of this column in plain lines."""
        return self.label or self.key


def echo_json(doc: Any) -> None:
    """Print ``doc`` as indented JSON on stdout."""
    click.echo(json.dumps(doc, indent=2))


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    as_json: bool,
    empty: str,
) -> None:
    """Print ``rows``: JSON array, table (terminal) or plain lines; ``empty`` if none."""
    if as_json:
        echo_json(list(rows))
        return
    if not rows:
        say(empty)
        return
    texts = [[c.show(row.get(c.key)) for c in columns] for row in rows]
    if stdout_is_tty():
        cut = [[one_line(t, c.width) for t, c in zip(r, columns, strict=True)] for r in texts]
        click.echo(table([c.header for c in columns], cut))
    else:
        for text in texts:
            click.echo(plain_line([c.plain_key for c in columns], text))


def emit_record(doc: dict[str, Any], fields: Sequence[tuple[str, str]], *, as_json: bool) -> None:
    """Print one record: ``doc`` as JSON, ``key: value`` lines on a terminal, else one
    plain line (``fields`` in order: the first value leads, the others are ``key=value``)."""
    if as_json:
        echo_json(doc)
    elif stdout_is_tty():
        width = max(len(k) for k, _ in fields) + 1
        for key, value in fields:
            click.echo(f"{key + ':':<{width}} {value}".rstrip())
    else:
        click.echo(plain_line([k for k, _ in fields], [v for _, v in fields]))


def emit_done(
    sentence: str, doc: dict[str, Any], fields: Sequence[tuple[str, str]], *, as_json: bool
) -> None:
    """Print what an action did: ``sentence`` on a terminal, ``doc`` as JSON, else one
    plain line of ``fields``."""
    if as_json:
        echo_json(doc)
    elif stdout_is_tty():
        click.echo(sentence)
    else:
        click.echo(plain_line([k for k, _ in fields], [v for _, v in fields]))


def say(text: str) -> None:
    """A line for people: stdout on a terminal, stderr in a pipe (stdout stays parseable)."""
    click.echo(text, err=not stdout_is_tty())


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, header first."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def plain_line(keys: Sequence[str], values: Sequence[str]) -> str:
    """``first key=value key=value ...`` with awkward values JSON-quoted."""
    first, *rest = (quote(v) for v in values)
    return " ".join([first, *(f"{k}={v}" for k, v in zip(keys[1:], rest, strict=True))])


def quote(text: str) -> str:
    """``text`` as is when it is one plain word, else as a JSON string."""
    if text and not any(c.isspace() or c in "\"'=\\" for c in text):
        return text
    return json.dumps(text)


def span(seconds: float) -> str:
    """A short duration: ``4.2s``, ``3.0m``, ``1.5h``, ``2.0d``."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"


def iso_ms(t_ms: int | None) -> str:
    """``2026-01-02T03:04:05.678Z`` (UTC), ``-`` for None or 0."""
    if not t_ms:
        return "-"
    when = dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def when(t_ms: int | None, now_ms: int | None = None) -> str:
    """``2026-01-02T03:04:05.678Z (in 3.0s)`` relative to ``now_ms``; ``-`` for None.

    Without ``now_ms``, the time alone. Unlike :func:`iso_ms`, 0 is a time (the epoch).
    """
    if t_ms is None:
        return "-"
    text = _iso(t_ms)
    if now_ms is None:
        return text
    delta_s = (t_ms - now_ms) / 1000
    if delta_s >= 0:
        return f"{text} (in {span(delta_s)})"
    return f"{text} ({span(-delta_s)} ago)"


def _iso(t_ms: int) -> str:
    # Integer milliseconds, not a float division: exact for any instant (ticks are ints).
    moment = EPOCH + dt.timedelta(milliseconds=t_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def examples(*lines: str) -> str:
    """An epilog of example command lines (``\\b`` keeps click from rewrapping them)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def one_line(text: str, limit: int | None = 200) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters
    (None: never cut)."""
    flat = " ".join(text.split())
    if limit is None or len(flat) <= limit:
        return flat
    cut = flat[: limit - 3]
    if " " in cut and not flat[limit - 3].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "..."
