"""Shared benchmark helpers: a private Redis, repeated runs, medians, tables.

Benchmarks report ratios against a baseline measured in the same run (the machine is
noisy), and medians of several runs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from stem.embedded import EmbeddedRedis


@contextmanager
def private_redis() -> Iterator[EmbeddedRedis]:
    """A throwaway redis-server (no persistence) for one benchmark run."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), appendonly=False) as r:
        yield r


def rate(n: int, fn: Callable[[], object]) -> float:
    """Operations per second of ``fn`` doing ``n`` operations."""
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain text table."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in rows]
    return "\n".join(out)
