"""Pure parts of the peers benchmark: run order, medians and spread, the Markdown table,
the requirements files and the docs section. No processes, no Redis: tested directly.
"""

from __future__ import annotations

import random
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

METRICS = ("drain1", "drain2", "single", "bulk", "p50_ms", "p99_ms", "rss_mib")
HEADER = (
    "system",
    "version",
    "drain, 1 process",
    "drain, 2 processes (2p/1p)",
    "single enqueue",
    "bulk enqueue",
    "latency p50 / p99 at {rate}/s",
    "peak RSS, 1 process",
)


@dataclass
class Result:
    """What one system measured over the reps: lists of values per metric (see ``METRICS``).

    ``error`` says why the system has no figures (not installed, failed); ``bulk_note``
    why the bulk column is empty.
    """

    name: str
    version: str = ""
    values: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None
    bulk_note: str | None = None

    def add(self, metric: str, value: float) -> None:
        self.values.setdefault(metric, []).append(value)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float


def spread(values: Sequence[float]) -> Spread | None:
    """Median and min-max of ``values``; ``None`` when there are none."""
    if not values:
        return None
    return Spread(statistics.median(values), min(values), max(values))


def shuffled_orders(names: Sequence[str], reps: int, seed: int) -> list[list[str]]:
    """One order of ``names`` per rep, each shuffled (the same seed gives the same orders)."""
    rng = random.Random(seed)  # noqa: S311  (a run order, not a secret)
    orders = []
    for _ in range(reps):
        order = list(names)
        rng.shuffle(order)
        orders.append(order)
    return orders


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def cell(values: Sequence[float], unit: str = "/s", digits: int = 0) -> str:
    """``median unit (min-max)``, or just the median when all reps agree or there is one."""
    s = spread(values)
    if s is None:
        return "-"
    text = f"{_number(s.median, digits)}{unit}"
    if len(values) > 1:
        text += f" ({_number(s.low, digits)}-{_number(s.high, digits)})"
    return text


def _drain2(r: Result) -> str:
    text = cell(r.values.get("drain2", []))
    one, two = spread(r.values.get("drain1", [])), spread(r.values.get("drain2", []))
    if one and two and one.median > 0:
        text += f" ({two.median / one.median:.2f}x)"
    return text


def _latency(r: Result, rate: int) -> str:
    """p50 / p99 medians (p99's spread); reps where one process drains slower than
    ``rate`` have no latency (the harness skips it), and the cell says so."""
    p50, p99 = spread(r.values.get("p50_ms", [])), spread(r.values.get("p99_ms", []))
    saturated = sum(1 for v in r.values.get("drain1", []) if v < rate)
    if p50 is None or p99 is None:
        if saturated:
            return f"saturated (1 process drains < {rate}/s)"
        return "-"
    text = f"{p50.median:.1f} / {p99.median:.1f} ms"
    if len(r.values["p99_ms"]) > 1:
        text += f" (p99 {p99.low:.1f}-{p99.high:.1f})"
    if saturated:
        text += f"; saturated in {saturated} rep(s)"
    return text


def row(r: Result, rate: int) -> list[str]:
    """The table row of one system; a system without figures says why in one cell."""
    if r.error is not None:
        return [r.name, r.version or "-", r.error.replace("|", "/"), "", "", "", "", ""]
    bulk = r.bulk_note if r.bulk_note is not None else cell(r.values.get("bulk", []))
    return [
        r.name,
        r.version,
        cell(r.values.get("drain1", [])),
        _drain2(r),
        cell(r.values.get("single", [])),
        bulk,
        _latency(r, rate),
        cell(r.values.get("rss_mib", []), " MiB", 1),
    ]


def markdown_table(results: Sequence[Result], rate: int) -> str:
    """A Markdown table: one row per system, in the order given."""
    header = [h.format(rate=rate) for h in HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row(r, rate)) + " |" for r in results]
    return "\n".join(lines)


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9_,.-]+\])?==([A-Za-z0-9.+!-]+)$")


def pinned_requirements(text: str) -> list[tuple[str, str]]:
    """(name, version) of each line of a requirements file; every line must be ``name==v``.

    Comments and blank lines are skipped. Raises ``ValueError`` naming the first line that
    is not an exact pin.
    """
    pins = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"not pinned with ==: {raw!r}")
        pins.append((match.group(1), match.group(3)))
    return pins


def replace_section(doc: str, heading: str, body: str, title: str) -> str:
    """``doc`` with the section under ``heading`` (up to the next ``## `` heading) replaced
    by ``body``; the section is appended when missing, and a missing doc gets ``title``."""
    if not doc.strip():
        doc = f"# {title}\n"
    section = f"{heading}\n\n{body.strip()}\n"
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return doc.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + after if after else "")
