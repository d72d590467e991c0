"""Schedule entries from ``stem.toml``: the ``[[schedule]]`` array of tables.

::

    [[schedule]]
    name = "nightly-report"
    task = "reports.nightly"
    cron = "30 2 * * *"
    tz = "Europe/Berlin"
    kwargs = { format = "pdf" }
    jitter_s = 60
    missed = "run_once"

    [[schedule]]
    name = "heartbeat"
    task = "ops.ping"
    every_s = 30

A running beat must keep firing good entries when one is bad, so
:func:`load_entries_from_toml` returns the good entries *and* one error per bad entry;
:func:`load_entries_from_toml_strict` (for ``stem schedule check`` and start-up) raises
the first. A file that cannot be read or parsed at all is an error either way. Unknown
keys are refused, with a suggestion when the key looks like a typo.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

from stem.errors import ConfigError
from stem.schedule.entries import Entry, ScheduleEntryError, entry_from_mapping


def entries_from_tables(
    tables: Sequence[Mapping[str, Any]],
) -> tuple[list[Entry], list[ConfigError]]:
    """Entries from already-parsed tables: the good ones, and one error per bad one.

    A repeated name is an error for every entry after the first that uses it: job ids are
    derived from names, so two entries with one name would suppress each other's ticks.
    """
    entries: list[Entry] = []
    errors: list[ConfigError] = []
    first_index: dict[str, int] = {}
    for index, table in enumerate(tables, start=1):
        try:
            entry = entry_from_mapping(table, index=index)
        except ScheduleEntryError as exc:
            errors.append(exc)
            continue
        if entry.name in first_index:
            first = first_index[entry.name]
            problem = f"duplicate name (entry #{index}; first defined by entry #{first})"
            errors.append(ScheduleEntryError(entry.name, problem, index=index))
            continue
        first_index[entry.name] = index
        entries.append(entry)
    return entries, errors


def load_entries_from_toml(
    path: str | PathLike[str],
) -> tuple[list[Entry], list[ConfigError]]:
    """Read ``[[schedule]]`` from a TOML file: the good entries, and one error per bad one.

    A file without a ``schedule`` key has no entries. Raises :class:`ConfigError` when the
    file cannot be read, is not TOML, or ``schedule`` is not an array of tables.
    """
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    tables = doc.get("schedule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: 'schedule' must be an array of tables ([[schedule]])")
    return entries_from_tables(tables)


def load_entries_from_toml_strict(path: str | PathLike[str]) -> list[Entry]:
    """Like :func:`load_entries_from_toml`, but raise the first bad entry's error."""
    entries, errors = load_entries_from_toml(path)
    if errors:
        raise errors[0]
    return entries
