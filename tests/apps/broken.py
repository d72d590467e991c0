"""An app module whose own code raises while it is imported (a bad ``--app``).

With ``$STEM_TEST_BREAK_APP=always`` it raises everywhere; with ``actors`` only inside a
supervised child (``$SUPERVISOR_CHILD_NAME`` set), so ``stem supervise`` can check the app
(it imports it first) and still have every actor it starts fail at once.
"""

from __future__ import annotations

import os

from stem import Stem

_break = os.environ.get("STEM_TEST_BREAK_APP")
if _break == "always" or (_break == "actors" and "SUPERVISOR_CHILD_NAME" in os.environ):
    raise RuntimeError("the database settings are missing")

app = Stem()
