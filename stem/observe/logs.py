"""Log setup for actor processes: one line per record on stderr, with the actor's name."""

from __future__ import annotations

import logging
import os
import sys


def configure_logging(actor: str, level: str | None = None) -> None:
    """Send stem's logs to stderr as ``time level actor[pid] logger: message`` lines.

    The level comes from ``level``, else ``$STEM_LOG_LEVEL``, else INFO.
    """
    chosen = (level or os.environ.get("STEM_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s {actor}[%(process)d] %(name)s: %(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger("stem")
    root.handlers[:] = [handler]
    root.setLevel(chosen)
    root.propagate = False
