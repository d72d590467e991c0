"""The soak's samples, the memory slopes judged from them, and how they are written out.

**Flat memory.** For each actor's RSS and for Redis's ``used_memory``, the least-squares
slope (MB per hour) over the samples after the warm-up (the first
:data:`WARMUP_FRACTION` of the run). A process that was restarted (a killed worker, the
restarted Redis) starts from a new baseline, so the slope is the *within-process* one:
each process's samples are centred on their own means and one slope is fitted through
all of them (a pooled fixed-effects fit), and a process's first :data:`PROCESS_WARMUP_S`
seconds count as warm-up too. Flat means ``|slope|`` under :data:`MAX_RSS_MB_PER_H` (per
actor) and :data:`MAX_REDIS_MB_PER_H`. A run whose judged window is shorter than
:data:`MIN_JUDGED_S` reports the slopes but does not judge them: a minute of samples
extrapolated to an hour is noise.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.soak.sampler import ACTORS, RedisFigures

WARMUP_FRACTION = 0.2
PROCESS_WARMUP_S = 60.0
MIN_JUDGED_S = 300.0
#: A leak of 5 MB/h is 120 MB a day per actor: small enough to catch one allocation per job
#: at 50 jobs/s kept for good (about 30 bytes each), large enough for allocator noise.
MAX_RSS_MB_PER_H = 5.0
#: Redis holds about 2 keys per job settled in the last ``result_ttl_s``; once that
#: population is steady, anything kept for good shows as growth.
MAX_REDIS_MB_PER_H = 10.0

COLUMNS = (
    "t_s",
    "throughput_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    *(f"rss_{a}_mb" for a in ACTORS),
    "redis_used_memory_mb",
    "redis_keys",
    "ready",
    "pending",
    "delayed",
    "dead",
    "fault",
)


@dataclass(frozen=True)
class Sample:
    """One row of the CSV (``rss`` keeps each actor's pid too, for the slopes)."""

    t_s: float
    throughput_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    rss: dict[str, tuple[int, float]]
    redis: RedisFigures | None
    redis_pid: int | None
    fault: str

    def row(self) -> list[str]:
        r = self.redis
        figures = ["", "", "", "", "", ""]
        if r is not None:
            counts = (r.keys, r.ready, r.pending, r.delayed, r.dead)
            figures = [f"{r.used_memory_mb:.3f}", *(str(c) for c in counts)]
        rss = [f"{self.rss[a][1]:.2f}" if a in self.rss else "" for a in ACTORS]
        return [
            f"{self.t_s:.1f}",
            f"{self.throughput_per_s:.2f}",
            _opt(self.latency_p50_ms),
            _opt(self.latency_p99_ms),
            *rss,
            *figures,
            self.fault,
        ]


def _opt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Slope:
    """One series' slope after warm-up, and whether it passed."""

    series: str
    mb_per_h: float | None
    limit_mb_per_h: float
    judged: bool
    samples: int

    @property
    def ok(self) -> bool:
        return not self.judged or (
            self.mb_per_h is not None and abs(self.mb_per_h) < self.limit_mb_per_h
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "mb_per_h": self.mb_per_h,
            "limit_mb_per_h": self.limit_mb_per_h,
            "judged": self.judged,
            "samples": self.samples,
            "ok": self.ok,
        }


def pooled_slope(points: Iterable[tuple[int, float, float]]) -> float | None:
    """Least-squares slope of y on x with one intercept per group ``(group, x, y)``."""
    groups: dict[int, list[tuple[float, float]]] = {}
    for g, x, y in points:
        groups.setdefault(g, []).append((x, y))
    sxy = sxx = 0.0
    for pts in groups.values():
        mx = sum(x for x, _ in pts) / len(pts)
        my = sum(y for _, y in pts) / len(pts)
        sxy += sum((x - mx) * (y - my) for x, y in pts)
        sxx += sum((x - mx) ** 2 for x, _ in pts)
    return sxy / sxx if sxx > 0 else None


def slopes(samples: list[Sample], duration_s: float) -> list[Slope]:
    """Each actor's RSS slope and Redis's ``used_memory`` slope, in MB per hour."""
    start = WARMUP_FRACTION * duration_s
    window = [s for s in samples if s.t_s >= start]
    judged = bool(window) and window[-1].t_s - window[0].t_s >= MIN_JUDGED_S
    first_seen: dict[int, float] = {}
    for s in samples:
        for pid, _ in s.rss.values():
            first_seen.setdefault(pid, s.t_s)
    out = []
    for actor in ACTORS:
        points = [
            (pid, s.t_s, mb)
            for s in window
            if actor in s.rss
            for pid, mb in [s.rss[actor]]
            if s.t_s - first_seen[pid] >= PROCESS_WARMUP_S
        ]
        out.append(_slope(f"rss {actor}", points, MAX_RSS_MB_PER_H, judged))
    redis_points = [
        (s.redis_pid or 0, s.t_s, s.redis.used_memory_mb) for s in window if s.redis is not None
    ]
    out.append(_slope("redis used_memory", redis_points, MAX_REDIS_MB_PER_H, judged))
    return out


def _slope(
    series: str, points: list[tuple[int, float, float]], limit: float, judged: bool
) -> Slope:
    per_s = pooled_slope(points)
    mb_per_h = None if per_s is None else round(per_s * 3600.0, 3)
    return Slope(series, mb_per_h, limit, judged and mb_per_h is not None, len(points))


@dataclass
class SampleLog:
    """The samples so far, each also appended to the CSV at ``path`` as it is taken, so a
    run stopped early (Ctrl-C, a crash) still leaves its data, and a long one can be
    watched with ``tail -f``."""

    path: Path
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerow(COLUMNS)

    def append(self, sample: Sample) -> None:
        self.samples.append(sample)
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow(sample.row())


def plot(path: Path, samples: list[Sample], title: str) -> bool:
    """Write a PNG of the samples; False (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = [s.t_s / 60.0 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    ax = axes[0]
    ax.plot(t, [s.throughput_per_s for s in samples], label="settled jobs/s")
    ax2 = ax.twinx()
    ax2.plot(t, [s.latency_p50_ms for s in samples], "g", lw=0.8, label="p50 ms")
    ax2.plot(t, [s.latency_p99_ms for s in samples], "r", lw=0.8, label="p99 ms")
    ax2.set_yscale("log")
    ax.set_ylabel("jobs/s")
    ax2.set_ylabel("latency ms (log)")
    ax2.legend(loc="upper right", fontsize=8)
    for actor in ACTORS:
        axes[1].plot(t, [s.rss[actor][1] if actor in s.rss else None for s in samples], label=actor)
    axes[1].set_ylabel("RSS MB")
    axes[1].legend(loc="upper left", fontsize=8, ncol=5)
    red = [s.redis for s in samples]
    axes[2].plot(t, [r.used_memory_mb if r else None for r in red], label="used_memory MB")
    axes[2].set_ylabel("Redis MB")
    keys = axes[2].twinx()
    keys.plot(t, [r.keys if r else None for r in red], "k", lw=0.6, label="keys")
    keys.set_ylabel("keys")
    for name in ("ready", "pending", "delayed", "dead"):
        axes[3].plot(t, [getattr(r, name) if r else None for r in red], label=name)
    axes[3].set_ylabel("jobs")
    axes[3].set_xlabel("minutes")
    axes[3].legend(loc="upper left", fontsize=8, ncol=4)
    for s, after in itertools.pairwise(samples):
        if s.fault:  # shade from the sample that saw the fault to the next one
            for a in axes:
                a.axvspan(s.t_s / 60.0, after.t_s / 60.0, color="orange", alpha=0.3, lw=0)
    axes[0].set_title(title + "  (orange: a fault was on)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
