"""Limits, the pure model: rates, limit definitions, and the keys a job is limited by.

A *definition* (:class:`LimitSpec`) is a name with a concurrency and/or a rate (token
bucket: ``rate_per_s`` tokens a second, ``1 + burst`` at most). Each task with
``rate_limit=``/``concurrency_limit=`` has one named after the task; ``app.limit(name,
...)`` defines a shared one; every ``lock=`` uses the built-in :data:`LOCK` (concurrency 1).
An *instance* is what state is kept for: the definition's name, or with a key template
(``limit_key="{tenant}"``, ``lock="sync:{account_id}"``) one instance per resolved key.

The producer resolves a job's instances from its arguments at enqueue time
(:meth:`TaskLimits.refs`) and the broker stores them with the job, so workers and the
limiter never run user code to find a key. Definitions set at run time (``stem limit set``)
override the code's (:func:`effective`). The record itself, ``LimitSpec``, crosses the
broker's interface, so it lives in ``stem.broker``.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from stem.broker import LimitSpec
from stem.errors import ConfigError

#: The definition every ``lock=`` uses: one job at a time per resolved key.
LOCK = "~lock"

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*(?:\+\s*(\d+)\s*)?$")
_PERIOD_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: Limit names: task names (``module.<locals>.fn`` included), without the separators.
_NAME = re.compile(r"^[^\s,={}]{1,200}$")
#: Characters a resolved key may not hold (they separate the stored list of limits).
_BAD_KEY = re.compile(r"[\s,={}]")


def parse_rate(text: str) -> tuple[float, int]:
    """``"10/s"``, ``"100/m"``, ``"5/h"``, with an optional burst ``"10/s+5"``:
    (tokens per second, burst). Anything else is a ``ConfigError``."""
    match = _RATE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"invalid rate {text!r}: use N/s, N/m or N/h (N > 0), e.g. '10/s+5'")
    return float(match.group(1)) / _PERIOD_S[match.group(2)], int(match.group(3) or 0)


def format_rate(per_s: float) -> str:
    """A rate for display, in the largest unit that keeps it a whole number if it can."""
    for unit, period in (("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        n = per_s * period
        if abs(n - round(n)) < 1e-9:
            return f"{round(n)}/{unit}"
    return f"{per_s:g}/s"


def spec(
    name: str, *, rate: str | None = None, concurrency: int | None = None, burst: int = 0
) -> LimitSpec:
    """A definition from the user's spelling (``rate="25/s"``, ``concurrency=2``)."""
    if not _NAME.match(name):
        raise ConfigError(f"invalid limit name {name!r}")
    per_s, in_rate = parse_rate(rate) if rate is not None else (0.0, 0)
    if rate is None and not concurrency:
        raise ConfigError(f"limit {name!r} needs a rate or a concurrency")
    if (concurrency or 0) < 0 or burst < 0:
        raise ConfigError(f"limit {name!r}: concurrency and burst must be >= 0")
    return LimitSpec(name, concurrency or 0, per_s, burst or in_rate)


def to_json(limit: LimitSpec) -> dict[str, Any]:
    """What ``stem limit show --json`` prints and an override in ``ns:limits`` holds."""
    rate = format_rate(limit.rate_per_s) if limit.rate_per_s else None
    return {"concurrency": limit.concurrency, "rate": rate, "burst": limit.burst}


def effective(code: Mapping[str, LimitSpec], overrides: Mapping[str, str]) -> tuple[LimitSpec, ...]:
    """The definitions in force: the code's, each field an override sets replaced.

    An override that cannot be read is ignored (logged by the caller's caller, never
    fatal: a bad ``stem limit set`` from another version must not stop a worker).
    """
    out = dict(code)
    for name, raw in overrides.items():
        try:
            out[name] = apply_override(out.get(name) or LimitSpec(name), json.loads(raw))
        except (ValueError, TypeError, ConfigError):
            continue
    return tuple(sorted(out.values(), key=lambda s: s.name))


def apply_override(spec: LimitSpec, fields: Mapping[str, Any]) -> LimitSpec:
    """``spec`` with the fields of an override (``concurrency``, ``rate``, ``burst``)."""
    changes: dict[str, Any] = {}
    if fields.get("concurrency") is not None:
        changes["concurrency"] = int(fields["concurrency"])
    if "rate" in fields:
        changes["rate_per_s"] = parse_rate(fields["rate"])[0] if fields["rate"] else 0.0
    if fields.get("burst") is not None:
        changes["burst"] = int(fields["burst"])
    return replace(spec, **changes)


def template_fields(template: str) -> list[str]:
    """The argument names a key template refers to (``"sync:{account_id}"``)."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"invalid key template {template!r}: {exc}") from None


def resolve(template: str, arguments: Mapping[str, Any], task: str) -> str:
    """The key ``template`` names for these arguments; ``ConfigError`` naming what is missing."""
    values: dict[str, str] = {}
    for name in template_fields(template):
        if not name.isidentifier():
            raise ConfigError(f"task {task!r}: key template {template!r}: {{{name}}} is no name")
        if name not in arguments:
            raise ConfigError(
                f"task {task!r}: key template {template!r} needs the argument {name!r}"
            )
        values[name] = str(arguments[name])
    key = template.format_map(values)
    if _BAD_KEY.search(key) or not key:
        raise ConfigError(
            f"task {task!r}: limit key {key!r} may not be empty or hold spaces, ',', '=' or braces"
        )
    return key


@dataclass(frozen=True)
class TaskLimits:
    """The limits one task's jobs are under: its own definition (``own``, named after the
    task, per ``key`` when a template is given), a ``lock`` template, shared ``named`` ones."""

    task: str
    own: LimitSpec | None = None
    key: str | None = None
    lock: str | None = None
    named: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """No limit at all: the job takes today's path."""
        return self.own is None and self.lock is None and not self.named

    def refs(self, arguments: Mapping[str, Any]) -> str:
        """The job's instances as stored with it: ``"<definition>=<instance>,..."``.

        The first one is where the job waits when throttled (round-robin runs across
        those instances): the task's own, else its lock, else the first named limit.
        """
        parts: list[str] = []
        if self.own is not None:
            inst = self.task
            if self.key is not None:
                inst = f"{self.task}:{resolve(self.key, arguments, self.task)}"
            parts.append(f"{self.own.name}={inst}")
        if self.lock is not None:
            parts.append(f"{LOCK}=lock:{resolve(self.lock, arguments, self.task)}")
        parts += [f"{name}={name}" for name in self.named]
        return ",".join(parts)


def lock_spec() -> LimitSpec:
    """The built-in definition of locks."""
    return LimitSpec(LOCK, 1)


def check_name(name: str) -> str:
    """A limit name, validated (``ConfigError`` naming it)."""
    if not _NAME.match(name):
        raise ConfigError(f"invalid limit name {name!r}: no spaces, ',', '=' or braces")
    return name


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    """Named limits a task refers to, validated."""
    for name in names:
        if not _NAME.match(name) or name == LOCK:
            raise ConfigError(f"invalid limit name {name!r}")
    return tuple(names)
