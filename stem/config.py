"""Where settings come from at the edges: the Redis URL and the app to load.

Order for the Redis URL: an explicit value (argument or ``--redis-url``), then
``$STEM_REDIS_URL``, then the URL that a running ``stem supervise`` with an embedded Redis
wrote to ``./.stem/redis.url``. Nothing configured is a ``ConfigError`` saying so.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stem.errors import ConfigError

if TYPE_CHECKING:
    from stem.app import Stem

#: Where ``stem supervise`` writes the URL of its embedded Redis.
EMBEDDED_URL_FILE = Path(".stem") / "redis.url"


def resolve_redis_url(explicit: str | None = None) -> str | None:
    """The Redis URL to use, or None when none is configured anywhere."""
    if explicit:
        return explicit
    from_env = os.environ.get("STEM_REDIS_URL")
    if from_env:
        return from_env
    if EMBEDDED_URL_FILE.is_file():
        written = EMBEDDED_URL_FILE.read_text().strip()
        return written or None
    return None


def url_file_source(path: Path = EMBEDDED_URL_FILE) -> str:
    """Where a URL read from ``path`` came from, for error messages: whether the
    ``stem supervise`` that wrote it (its status file is next to it) still runs."""
    pid = _supervisor_pid(path.parent / "supervise.json")
    if pid is None:
        return f"./{path}, written by a `stem supervise`"
    import psutil  # only for this message: a pool child that loads the app skips it

    if not psutil.pid_exists(pid):
        return f"./{path}, written by a `stem supervise` that is no longer running"
    return f"./{path}, written by the running `stem supervise`, pid {pid}"


def _supervisor_pid(status: Path) -> int | None:
    try:
        pid = json.loads(status.read_text()).get("supervisor_pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and pid > 0 else None

    return True


def load_app(spec: str) -> Stem:
    """Import ``module:attribute`` and return the ``Stem`` app it names.

    The current directory is importable, as it is for ``python -m``. Every failure,
    including an exception raised by the module's own code while it is imported (a
    ``SyntaxError``, a ``RuntimeError``), is a ``ConfigError`` with one line saying what
    was wrong.
    """
    from stem.app import Stem

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--app {spec!r}: expected 'module:attribute', e.g. 'myapp.jobs:app'")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the app's own code ran: ImportError, SyntaxError, anything
        raise ConfigError(
            f"--app {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    app = getattr(module, attr, None)
    if not isinstance(app, Stem):
        raise ConfigError(f"--app {spec!r}: {module_name}.{attr} is not a stem.Stem app")
    return app


#: ``--prefetch``: a number of jobs, or ``"auto"`` (``stem.worker.prefetch``).
PrefetchSetting = int | Literal["auto"]


def parse_prefetch(value: str | int) -> PrefetchSetting:
    """``"auto"`` or a number of jobs >= 0 (a ``ConfigError`` names what was wrong)."""
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    # A float (2.5, from a TOML file) is refused too: a worker is handed its str().
    raise ConfigError(f"prefetch must be 'auto' or a number >= 0, got {value!r}")
