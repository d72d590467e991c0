"""``python -m chaos soak``: steady load for a long time, faults now and then, and the
question whether anything is lost or grows.

One stack (:func:`chaos.stack.open_stack`, AOF on): ``stem supervise --workers 2 --beat``
(2 workers of concurrency 5 and prefetch 5, the reclaimer, beat on
:mod:`chaos.beat_app`) and a producer at ``rate_per_s`` jobs of :data:`JOB_S` seconds,
all through one Toxiproxy proxy. Every ``fault_every_s`` the next fault of
:func:`chaos.soak.faults.cycle` is switched on for its hold time. Every ``sample_every_s``
a :class:`~chaos.soak.report.Sample` is taken (jobs settled and their latency, each
actor's RSS, Redis memory and keys, queue depths, the fault now on).

The actors run with a short result TTL (:data:`RESULT_TTL_S`): with the default 7 days,
Redis grows by every job's record by design and its memory could not be flat; with it,
the records reach a steady population a couple of minutes in, and what grows after that
is kept by mistake.

At the end the producer stops, the run waits (bounded, :data:`SETTLE_TIMEOUT_S`) for
every accepted job, and the checker of the scenarios judges it (nothing lost, duplicates
within what the faults explain, streams drained, no actor error exit, the supervisor
alive, nothing left running after teardown); then the memory slopes
(:mod:`chaos.soak.report`). Every stack process is stopped on the way out, also on error
or Ctrl-C (``open_stack``'s teardown).
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toxiproxy.proxy import Proxy

from chaos.checker import Verdict, check_no_actor_error, check_processes, count_keys, judge
from chaos.soak.faults import CONCURRENCY, PREFETCH, Fault, Target, cycle
from chaos.soak.report import Sample, SampleLog, Slope, percentile, plot, slopes
from chaos.soak.sampler import ActorMemory, JobTracker, redis_figures
from chaos.stack import Actor, Producer, Stack, open_stack, wait_for
from chaos.stack.actors import stem_argv

JOB_S = 0.05
RESULT_TTL_S = 120
SETTLE_TIMEOUT_S = 90.0
_TICK_S = 0.2


@dataclass(frozen=True)
class SoakOptions:
    duration_s: float
    fault_every_s: float = 120.0
    rate_per_s: float = 50.0
    sample_every_s: float = 5.0
    out: Path = Path(".")
    toxiproxy_url: str | None = None


@dataclass
class SoakResult:
    """The verdict of the checker, the slopes, and where the CSV and plot are."""

    verdict: Verdict
    duration_s: float
    samples: int = 0
    settled: int = 0
    throughput_per_s: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    faults: Counter[str] = field(default_factory=Counter)
    slopes: list[Slope] = field(default_factory=list)
    csv_path: Path | None = None
    png_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.verdict.ok and all(s.ok for s in self.slopes)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "duration_s": self.duration_s,
            "samples": self.samples,
            "settled": self.settled,
            "throughput_per_s": self.throughput_per_s,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "faults": dict(self.faults),
            "slopes": [s.as_json() for s in self.slopes],
            "csv": str(self.csv_path) if self.csv_path else None,
            "png": str(self.png_path) if self.png_path else None,
            "verdict": self.verdict.as_json(),
        }


def run_soak(opts: SoakOptions) -> SoakResult:
    """Run the soak; never raises for a failure of stem (it is in the result)."""
    result = SoakResult(Verdict("soak"), opts.duration_s)
    samples = SampleLog(opts.out / "soak.csv")
    try:
        with open_stack("soak", appendonly=True, toxiproxy_url=opts.toxiproxy_url) as stack:
            try:
                _drive(stack, opts, result, samples)
            except Exception as exc:
                result.verdict.problems.append(f"soak stopped: {type(exc).__name__}: {exc}")
                result.verdict.notes.append(traceback.format_exc())
                result.verdict.notes.extend(
                    f"--- {a.name}\n{a.log()[-2000:]}" for a in stack.actors
                )
    except Exception as exc:  # the stack itself failed (teardown, Redis)
        result.verdict.problems.append(f"stack failed: {type(exc).__name__}: {exc}")
    else:
        check_processes(stack, result.verdict)
    _write(opts, result, samples)
    return result


def _supervise(stack: Stack, link: Proxy) -> Actor:
    """``stem supervise`` with beat, on the beat app, records kept ``RESULT_TTL_S``."""
    base = stem_argv(stack.url(link), stack.namespace, "supervise", app="chaos.beat_app:app")
    argv = [*base, "--data-dir", str(stack.folder / "supervise-data"), "--workers", "2", "--beat"]
    argv += ["--concurrency", str(CONCURRENCY), "--prefetch", str(PREFETCH)]
    argv += ["--max-restarts", "1000"]
    return stack.start("supervise", argv, env={"CHAOS_RESULT_TTL_S": str(RESULT_TTL_S)})


def _drive(stack: Stack, opts: SoakOptions, result: SoakResult, samples: SampleLog) -> None:
    link = stack.proxy("redis")
    sup = _supervise(stack, link)
    memory = ActorMemory(sup)
    wait_for(lambda: len(memory.workers()) == 2, 30.0, "the supervisor's two workers")
    keys_before = count_keys(stack)
    total = int(opts.rate_per_s * opts.duration_s) + 1
    producer = Producer(stack.app(link), total, opts.rate_per_s, JOB_S).start()
    tracker = JobTracker(stack)
    target = Target(stack, link, memory.workers)
    faults = cycle(stack.lease_s)
    latencies: list[float] = []
    start = time.monotonic()
    loop = _Loop(opts, start, faults)
    try:
        while (now := time.monotonic()) - start < opts.duration_s:
            loop.faults_at(now, target, result)
            if now >= loop.next_sample:
                tracker.take(producer.sent)
                samples.append(_sample(stack, memory, tracker, latencies, loop, now - start))
                loop.next_sample += opts.sample_every_s
            time.sleep(min(_TICK_S, max(0.0, loop.next_event() - time.monotonic())))
    finally:
        producer.stop()
        loop.end_fault(target)
    producer.join()
    _settle(tracker, producer, latencies, result)
    verdict = result.verdict
    verdict.problems.extend(tracker.problems)
    verdict.refused, verdict.written_despite_error = tracker.refused, tracker.written_despite_error
    verdict.allowed_duplicates = sum(f.budget * n for f in faults for n in [result.faults[f.name]])
    ids = list(tracker.states)
    judge(stack, verdict, ids, tracker.states, keys_before)
    check_no_actor_error(stack, verdict)
    if not sup.alive():
        verdict.problems.append(f"the supervisor exited ({sup.proc and sup.proc.poll()})")
    result.samples, result.settled = len(samples.samples), len(latencies)
    result.throughput_per_s = round(len(latencies) / opts.duration_s, 2)
    result.latency_p50_ms = percentile(latencies, 0.50)
    result.latency_p99_ms = percentile(latencies, 0.99)


@dataclass
class _Loop:
    """When the next sample is due and which fault is on (or next) in the cycle."""

    opts: SoakOptions
    start: float
    faults: list[Fault]
    index: int = 0
    active: Fault | None = None
    active_until: float = 0.0
    last_sample: float | None = None

    def __post_init__(self) -> None:
        self.next_sample = self.start
        self.next_fault = self.start + self.opts.fault_every_s

    def next_event(self) -> float:
        return min(self.next_sample, self.active_until if self.active else self.next_fault)

    def faults_at(self, now: float, target: Target, result: SoakResult) -> None:
        if self.active is not None and now >= self.active_until:
            self.end_fault(target)
        if self.active is None and now >= self.next_fault:
            fault = self.faults[self.index % len(self.faults)]
            self.index += 1
            self.next_fault += self.opts.fault_every_s
            fault.begin(target)
            self.active, self.active_until = fault, now + fault.hold_s
            result.faults[fault.name] += 1

    def end_fault(self, target: Target) -> None:
        if self.active is not None:
            fault, self.active = self.active, None
            fault.end(target)


def _sample(
    stack: Stack,
    memory: ActorMemory,
    tracker: JobTracker,
    latencies: list[float],
    loop: _Loop,
    t_s: float,
) -> Sample:
    settled = tracker.poll()
    latencies.extend(settled)
    interval = t_s - loop.last_sample if loop.last_sample is not None else 0.0
    loop.last_sample = t_s
    return Sample(
        t_s=t_s,
        throughput_per_s=len(settled) / interval if interval > 0 else 0.0,
        latency_p50_ms=percentile(settled, 0.50),
        latency_p99_ms=percentile(settled, 0.99),
        rss=memory.rss_mb(),
        redis=redis_figures(stack),
        redis_pid=stack.redis.pid,
        fault=loop.active.name if loop.active else "",
    )


def _settle(
    tracker: JobTracker, producer: Producer, latencies: list[float], result: SoakResult
) -> None:
    tracker.take(producer.sent)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while tracker.outstanding and time.monotonic() < deadline:
        latencies.extend(tracker.poll())
        time.sleep(0.5)  # polling interval of a bounded wait


def _write(opts: SoakOptions, result: SoakResult, samples: SampleLog) -> None:
    result.slopes = slopes(samples.samples, opts.duration_s)
    result.csv_path = samples.path
    png = opts.out / "soak.png"
    title = f"stem soak: {opts.duration_s:.0f} s, {opts.rate_per_s:g} jobs/s"
    result.png_path = png if plot(png, samples.samples, title) else None
