"""``chaos.beat_app:app``: the chaos app plus one schedule entry, ``chaos-tick``, every 1 s.

Only the beat replicas load this module; workers load :mod:`chaos.jobs` and so fire
nothing. Tick ``t`` has the job id ``beat:chaos-tick:<t>`` (``stem.schedule``), which the
ledger records when it runs: the beat scenario checks every tick ran exactly once.
"""

from __future__ import annotations

from chaos.jobs import app, run

ENTRY = "chaos-tick"
EVERY_S = 1.0

app.schedule(run, name=ENTRY, every_s=EVERY_S)

__all__ = ["ENTRY", "EVERY_S", "app"]
