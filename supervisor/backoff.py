"""Restart pacing: exponential backoff with jitter, and the restart intensity.

Everything here is pure: times are passed in (the supervisor passes
``trio.current_time()``), and randomness comes from a ``random.Random`` the caller may seed.

- ``Backoff`` says how long to wait before restart number *n* of a run of failures:
  ``min(cap_s, initial_s * factor ** n)``, then jittered *down* by up to ``jitter`` of that
  value, so a delay never exceeds ``cap_s`` and replicas that failed together spread out.
- ``BackoffTracker`` counts consecutive failures of one replica and forgets them once the
  replica has run for ``reset_after_s``.
- ``RestartIntensity`` is OTP's "at most ``max_restarts`` restarts in ``within_s``
  seconds"; ``IntensityWindow`` applies it to the restarts of all children together.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import random

from supervisor.errors import SupervisorConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SupervisorConfigError(message)


def _finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between restarts of one replica.

    Attributes:
        initial_s: delay before the first restart of a run of failures.
        factor: growth per consecutive failure (>= 1).
        cap_s: the longest delay (>= initial_s).
        jitter: fraction in [0, 1]; a delay is drawn uniformly from
            ``[d * (1 - jitter), d]`` where ``d`` is the un-jittered delay.
        reset_after_s: a replica that ran at least this long is considered stable, and
            its failure count starts again from zero.

    Raises ``SupervisorConfigError`` on construction when a value is out of range.
    """

    initial_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    jitter: float = 0.2
    reset_after_s: float = 60.0

    def __post_init__(self) -> None:
        _check(_finite_positive(self.initial_s), f"initial_s must be > 0, got {self.initial_s}")
        _check(math.isfinite(self.factor) and self.factor >= 1, "factor must be >= 1")
        _check(
            math.isfinite(self.cap_s) and self.cap_s >= self.initial_s,
            f"cap_s must be >= initial_s ({self.initial_s}), got {self.cap_s}",
        )
        _check(0 <= self.jitter <= 1, f"jitter must be within [0, 1], got {self.jitter}")
        _check(_finite_positive(self.reset_after_s), "reset_after_s must be > 0")

    def base_delay_s(self, failures: int) -> float:
        """The un-jittered delay after ``failures`` earlier consecutive failures (0-based)."""
        if failures < 0:
            raise ValueError(f"failures must be >= 0, got {failures}")
        # Compare exponents instead of computing factor ** failures, which overflows.
        if self.factor > 1 and failures > math.log(self.cap_s / self.initial_s, self.factor):
            return self.cap_s
        return min(self.cap_s, self.initial_s * self.factor**failures)

    def delay_s(self, failures: int, rng: random.Random | None = None) -> float:
        """A jittered delay in ``[base * (1 - jitter), base]`` for ``base_delay_s(failures)``."""
        base = self.base_delay_s(failures)
        draw = (rng or random).random()
        return base * (1 - self.jitter * draw)


class BackoffTracker:
    """The consecutive-failure count of one replica, with the stable-run reset.

    Call ``next_delay_s(ran_for_s)`` each time the replica ended and will be restarted.
    """

    def __init__(self, backoff: Backoff, rng: random.Random | None = None) -> None:
        self.backoff = backoff
        self.failures = 0
        self._rng = rng

    def next_delay_s(self, ran_for_s: float) -> float:
        """The delay before the next start; a run of ``reset_after_s`` or more resets it."""
        if ran_for_s >= self.backoff.reset_after_s:
            self.failures = 0
        delay = self.backoff.delay_s(self.failures, self._rng)
        self.failures += 1
        return delay


@dataclasses.dataclass(frozen=True)
class RestartIntensity:
    """At most ``max_restarts`` restarts within any ``within_s`` seconds (OTP's MaxR/MaxT).

    One more restart than that makes the supervisor stop every child and raise
    ``SupervisorGaveUp``. ``max_restarts=0`` gives up on the first failure.
    """

    max_restarts: int = 5
    within_s: float = 60.0

    def __post_init__(self) -> None:
        _check(self.max_restarts >= 0, f"max_restarts must be >= 0, got {self.max_restarts}")
        _check(_finite_positive(self.within_s), f"within_s must be > 0, got {self.within_s}")


DEFAULT_INTENSITY = RestartIntensity()
"""At most 5 restarts within 60 s."""


class IntensityWindow:
    """Remembers recent restart times and says when the intensity is exceeded."""

    def __init__(self, intensity: RestartIntensity) -> None:
        self.intensity = intensity
        self._times: collections.deque[float] = collections.deque()

    def record(self, now: float) -> bool:
        """Count a restart at ``now``; True if that restart exceeds the intensity."""
        self._times.append(now)
        horizon = now - self.intensity.within_s
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times) > self.intensity.max_restarts
