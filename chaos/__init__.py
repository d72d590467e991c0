"""Fault injection for stem's chaos suite.

``chaos.proxy`` is a Toxiproxy-compatible TCP proxy written on trio: the same HTTP API
(v2) and the same toxics, so a suite written against ``toxiproxy-python`` runs unchanged
against it or against Shopify's Go ``toxiproxy-server``. It imports nothing from stem.

Around it: ``chaos.stack`` brings up Redis, proxies and real actor processes,
``chaos.jobs`` is the task app whose runs are written to a ledger, ``chaos.checker``
judges a run, ``chaos.scenarios`` holds the scenarios and ``python -m chaos`` runs them
(see ``docs/guides/chaos.md``).
"""
