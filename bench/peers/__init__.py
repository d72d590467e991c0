"""Peers in our bench: the same job through stem, Celery, RQ, Dramatiq, Huey, arq, SAQ,
taskiq-redis and streaQ, beside a hand-written Redis Streams ceiling, in one run.

    .venv/bin/python -m bench.peers setup          # each peer into .venv-peers/<peer>/
    .venv/bin/python -m bench.peers --quick        # a few minutes, prints the table
    .venv/bin/python -m bench.peers                # 3 reps, writes docs/performance.md

See bench/README.md ("Peers") for what is measured and how. The peers are never
dependencies of stem: each has its own environment and pinned requirements file.
Modules imported inside the peers' environments (``job``, ``driver``, ``apps``) must not
import ``stem``.
"""
