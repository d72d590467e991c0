"""Faults on what goes into Redis: a bulk enqueue cut off mid-call, Redis out of memory,
and values stem did not write placed in its keys while it runs."""

from __future__ import annotations

import time

from chaos.checker import Verdict
from chaos.scenarios import Options, scenario
from chaos.scenarios.flow import finish, hold, probe, start_keys, toxic, wait_running
from chaos.stack import Stack
from chaos.stack.producer import TASK
from stem import Stem
from stem.broker.keys import Keys
from stem.envelope import new_job_id
from stem.errors import BrokerUnavailable, EnqueueIncomplete, OutsideError
from stem.states import JobState

CHUNK = 500  # jobs per enqueue script call (stem.broker)


def _idem_written(stack: Stack, key: str, total: int) -> int:
    """How many jobs of an ``enqueue_many(idempotency_key=key)`` Redis holds."""
    qk = Keys(stack.namespace).queue("default")
    client = stack.redis.client()
    pipe = client.pipeline(transaction=False)
    for i in range(total):
        pipe.exists(qk.idempotency(f"{key}:{i}"))
    return sum(pipe.execute())


def _repeat_until_complete(stack: Stack, verdict: Verdict, key: str, total: int) -> list[str]:
    """Repeat the bulk call (healed link) with the same key: every handle, once each."""
    handles = stack.app(None).enqueue_many(TASK, [(0.0,)] * total, idempotency_key=key)
    ids = [h.id for h in handles]
    if len(set(ids)) != total:
        verdict.problems.append(f"repeat returned {len(set(ids))} distinct ids of {total}")
    if (held := _idem_written(stack, key, total)) != total:
        verdict.problems.append(f"after the repeat Redis holds {held} of {total} jobs")
    return ids


def _single_refusals(stack: Stack, app: Stem, verdict: Verdict, tries: int = 5) -> int:
    """Single enqueues while Redis is full, with ids chosen here so Redis can be asked
    afterwards: each must be refused as one clear ``BrokerUnavailable`` line, and a
    refused one must not exist. Returns how many were refused.

    The scenario's producer may have sent all of its jobs before the fault began (its
    load is bounded); these calls make the fault's effect on a producer certain.
    """
    qk = Keys(stack.namespace).queue("default")
    client = stack.redis.client()
    refused = 0
    for _ in range(tries):
        job_id = new_job_id()
        try:
            app.enqueue(TASK, [0.0], job_id=job_id)
        except BrokerUnavailable as exc:
            refused += 1
            if "\n" in str(exc):
                verdict.problems.append(f"OOM refusal is not one line: {str(exc)[:200]!r}")
            if client.exists(qk.job(job_id)):
                verdict.written_despite_error += 1
        except OutsideError as exc:
            verdict.problems.append(f"OOM refused as {type(exc).__name__}, not BrokerUnavailable")
    return refused


def _check_told(verdict: Verdict, exc: BaseException | None, written: int, total: int) -> None:
    """What the caller was told must match what Redis holds, in whole chunks."""
    verdict.notes.append(f"bulk call: {type(exc).__name__ if exc else 'ok'}; Redis holds {written}")
    if exc is None:
        if written != total:
            verdict.problems.append(f"enqueue_many returned but Redis holds {written}/{total}")
        return
    text = str(exc)
    if not isinstance(exc, OutsideError) or "\n" in text:
        verdict.problems.append(f"bulk error not a one-line OutsideError: {text[:200]!r}")
    if isinstance(exc, EnqueueIncomplete) and exc.written != written:
        verdict.problems.append(f"told written={exc.written}, Redis holds {written}")
    if written % CHUNK and written != total:
        verdict.problems.append(f"{written} jobs written: a chunk was half-written")


@scenario(
    "producer-cutoff",
    "enqueue_many of several 500-job chunks through a link that closes after a few "
    "hundred KB (limit_data), then repeated with the same idempotency_key",
    "a bulk enqueue cut off mid-call tells the truth about what it wrote, and the repeat "
    "enqueues the rest exactly once",
)
def producer_cutoff(stack: Stack, opts: Options, verdict: Verdict) -> None:
    producer_link, work = stack.proxy("producer"), stack.proxy("work")
    worker = stack.worker(work, "worker", "--concurrency", "50", "--prefetch", "50")
    keys_before = start_keys(stack)
    total, key = opts.load(3000, 1500), "chaos-bulk"
    app = stack.app(producer_link)
    error: BaseException | None = None
    with toxic(producer_link, "limit_data", {"bytes": 400_000}, ("upstream",)):
        try:
            app.enqueue_many(TASK, [(0.0,)] * total, idempotency_key=key)
        except Exception as exc:
            error = exc
    _check_told(verdict, error, _idem_written(stack, key, total), total)
    ids = _repeat_until_complete(stack, verdict, key, total)
    finish(stack, verdict, [], keys_before, ids, alive=[worker])


@scenario(
    "maxmemory",
    "Redis at maxmemory (noeviction) while producing and draining; memory freed later "
    "with CONFIG SET on the direct connection",
    "OOM refusals are one clear BrokerUnavailable, nothing is half-written, the flow "
    "resumes once memory is freed",
)
def maxmemory(stack: Stack, opts: Options, verdict: Verdict) -> None:
    link = stack.proxy("redis")
    sup = stack.supervise(link, "--workers", "2")
    keys_before = start_keys(stack)
    producer = stack.producer(link, opts.load(300, 100), rate_per_s=25, seconds=0.1).start()
    wait_running(stack, 10)
    client = stack.redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) // 2))
    app = stack.app(link)
    key, total = "chaos-oom", 20
    bulk_error: BaseException | None = None
    try:
        app.enqueue_many(TASK, [(0.0,)] * total, idempotency_key=key)
    except Exception as exc:
        bulk_error = exc
    _check_told(verdict, bulk_error, _idem_written(stack, key, total), total)
    refused_singles = _single_refusals(stack, app, verdict)
    hold(opts.hold(8.0, 3.0))
    client.config_set("maxmemory", "0")
    freed = time.monotonic()
    ids = probe(stack, link, verdict, freed, count=4)
    ids += _repeat_until_complete(stack, verdict, key, total)
    producer.join()
    refused = [s for s in producer.sent if s.error is not None]
    finish(stack, verdict, producer.sent, keys_before, ids, alive=[sup])
    verdict.notes.append(f"refused: {len(refused)} producer, {refused_singles} single enqueues")
    if not refused and not refused_singles:
        verdict.problems.append("no enqueue was refused at maxmemory: the fault did not bite")
    if verdict.written_despite_error:
        verdict.problems.append(
            f"{verdict.written_despite_error} job(s) written although enqueue reported OOM"
        )


@scenario(
    "foreign-values",
    "values stem did not write placed in its keys while workers and the reclaimer run: "
    "garbled record fields, non-UTF-8 stream entries, a job key of the wrong type, a huge "
    "delayed score",
    "each bad value costs only its own job (dead-lettered corrupt-record/undecodable, or "
    "run); every other job completes and no actor exits",
)
def foreign_values(stack: Stack, opts: Options, verdict: Verdict) -> None:
    link = stack.proxy("redis")
    worker = stack.worker(link, "worker")
    reclaimer = stack.reclaimer(link)
    keys_before = start_keys(stack)
    producer = stack.producer(link, opts.load(300, 100), rate_per_s=25, seconds=0.1).start()
    wait_running(stack, 5)
    victims = _inject(stack, opts.load(10, 4))
    hold(opts.hold(6.0, 3.0))  # let the actors meet them
    ids = probe(stack, link, verdict, time.monotonic(), count=4)
    producer.join()
    _release_huge_scores(stack, verdict, victims["huge"])
    finish(stack, verdict, producer.sent, keys_before, ids, alive=[worker, reclaimer])
    _judge_victims(stack, verdict, victims)


def _inject(stack: Stack, rounds: int) -> dict[str, list[str]]:
    qk = Keys(stack.namespace).queue("default")
    client = stack.redis.client()
    direct = stack.direct
    victims: dict[str, list[str]] = {"garbled": [], "huge": []}
    for i in range(rounds):
        delayed = direct.enqueue(TASK, (0.0,), delay_s=1.0)
        client.hset(qk.job(delayed.id), mapping={"deliveries": "many", "attempt": "1e400"})
        victims["garbled"].append(delayed.id)
        client.xadd(qk.stream(0), {b"id": b"\xff\xfe-" + str(i).encode(), b"\xc3\x28": b"\xa0"})
        wrong = f"wrongtype-{stack.namespace}-{i}"
        client.set(qk.job(wrong), b"\x00not a hash")
        client.xadd(qk.stream(0), {"id": wrong})
        far = direct.enqueue(TASK, (0.0,), delay_s=3600)
        client.hset(qk.job(far.id), mapping={"eta_ms": "1.79e+21"})
        client.zadd(qk.delayed, {far.id: 1.79e21})
        victims["huge"].append(far.id)
        time.sleep(0.2)  # spread the bad values over the drain (pacing)
    return victims


def _release_huge_scores(stack: Stack, verdict: Verdict, ids: list[str]) -> None:
    """Far-future jobs must still wait (not run, not vanish); then take them out so the
    queue counts as drained."""
    qk = Keys(stack.namespace).queue("default")
    client = stack.redis.client()
    for jid in ids:
        if client.zscore(qk.delayed, jid) is None:
            verdict.problems.append(f"huge-score job {jid} left the delayed set")
        client.zrem(qk.delayed, jid)


def _judge_victims(stack: Stack, verdict: Verdict, victims: dict[str, list[str]]) -> None:
    broker = stack.direct.broker
    reasons = {e.job_id: e.reason for e in broker.dead_entries("default", count=100_000)}
    for jid in victims["garbled"]:
        record = broker.job("default", jid)
        state = record.state if record is not None else None
        if state is not JobState.SUCCEEDED and reasons.get(jid) != "corrupt-record":
            verdict.problems.append(f"garbled job {jid}: {state}, reason {reasons.get(jid)}")
    verdict.notes.append(f"DLQ reasons: {sorted(set(reasons.values()))}")
