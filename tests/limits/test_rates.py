"""Rate limits at the broker: the lag of a late start is made up, never beyond the rate
in any 1-second window. Server time throughout (the scripts' clock)."""

from __future__ import annotations

import time

from stem import Stem
from stem.broker import RedisBroker
from stem.limits import spec


def rated_app(app: Stem, rate: str = "20/s") -> None:
    @app.task(rate_limit=rate, name="rated")
    async def rated(i: int) -> int:
        return i


def server_ms(broker: RedisBroker) -> float:
    seconds, micros = broker.client.time()
    return float(seconds) * 1000 + float(micros) / 1000


def fall_behind(broker: RedisBroker, ms: float) -> None:
    """Make the rate's next token due ``ms`` ago: what a limiter that woke late sees."""
    key = broker.keys.queue("default").limit("rated")
    broker.client.hset(key, "tat", f"{server_ms(broker) - ms:.3f}")


def test_a_token_that_fell_due_while_the_limiter_slept_is_not_lost(
    app: Stem, broker: RedisBroker
) -> None:
    rated_app(app, "4/s")  # a token every 250 ms
    specs = tuple(app.limit_specs().values())
    enqueued_ms = server_ms(broker)
    app.enqueue_many("rated", [(i,) for i in range(4)])
    assert len(broker.fetch("default", "c1", 10, specs)) == 1  # takes the token; three wait
    deadline = time.monotonic() + 30
    while server_ms(broker) < enqueued_ms + 220 and time.monotonic() < deadline:
        pass  # the jobs have waited longer than the lag below
    fall_behind(broker, 200)  # the next token fell due 200 ms ago

    done = broker.limit_round("default", specs)

    assert done.released >= 1
    # The token after it is due 250 ms after the late one was (50 ms from now, less
    # whatever this machine took since), not 250 ms after now.
    assert 0 <= done.next_token_ms < 200


def test_a_limiter_that_keeps_catching_up_never_puts_more_than_the_rate_in_one_second(
    app: Stem, broker: RedisBroker
) -> None:
    rated_app(app)
    specs = tuple(app.limit_specs().values())
    enqueued_ms = server_ms(broker)
    app.enqueue_many("rated", [(i,) for i in range(60)])
    deadline = time.monotonic() + 30
    while server_ms(broker) < enqueued_ms + 300 and time.monotonic() < deadline:
        pass  # the jobs have waited longer than the lag carried: each round may pour out
    broker.fetch("default", "c1", 100, specs)  # one starts, the rest wait
    first_ms = server_ms(broker)
    while server_ms(broker) < first_ms + 800 and time.monotonic() < deadline:
        fall_behind(broker, 240)  # always 240 ms behind: the carry alone would pour out
        broker.limit_round("default", specs)

    assert server_ms(broker) >= first_ms + 800
    assert broker.limit_counters("default")["limit_released"] == 20 - 1  # + the first


def test_an_idle_rate_starts_its_next_job_at_once_and_spreads_the_ones_after(
    app: Stem, broker: RedisBroker
) -> None:
    rated_app(app, "1/s")
    specs = tuple(app.limit_specs().values())
    app.enqueue_many("rated", [(i,) for i in range(2)])

    assert len(broker.fetch("default", "c1", 10, specs)) == 1
    done = broker.limit_round("default", specs)
    assert (done.released, 900 <= done.next_token_ms <= 1000) == (0, True)


def test_the_window_guard_is_sized_from_the_rate_and_burst_and_off_for_huge_rates() -> None:
    from stem.broker.limits import guard_size

    assert guard_size(spec("a", rate="20/s")) == 20
    assert guard_size(spec("a", rate="20/s+5")) == 25
    assert guard_size(spec("a", rate="150/m")) == 3  # 2.5/s: three can fall in one second
    assert guard_size(spec("a", rate="1000000/s")) == 0
    assert guard_size(spec("a", concurrency=2)) == 0


def test_a_rate_state_expires_once_it_can_refuse_nothing(app: Stem, broker: RedisBroker) -> None:
    rated_app(app, "1/s")  # each start owes 1 s; the guard remembers 1 s
    specs = tuple(app.limit_specs().values())
    app.enqueue_many("rated", [(i,) for i in range(600)])
    key = broker.keys.queue("default").limit("rated")

    assert len(broker.fetch("default", "c1", 500, specs)) == 1  # the rest wait
    ttl_ms = broker.client.pttl(key)

    # Idle per-key state drops by itself: kept past the debt and the guard's second
    # (2 s from the grant), never for long.
    assert 2000 <= ttl_ms <= 4000


def test_a_fetch_of_many_jobs_under_a_huge_rate_keeps_its_state_alive(
    app: Stem, broker: RedisBroker
) -> None:
    rated_app(app, "1000000/s")
    specs = tuple(app.limit_specs().values())
    app.enqueue_many("rated", [(i,) for i in range(500)])

    assert len(broker.fetch("default", "c1", 500, specs)) == 500  # none throttled
    assert 2000 <= broker.client.pttl(broker.keys.queue("default").limit("rated")) <= 4000


def test_a_catch_up_burst_after_the_limiter_was_away_is_not_repeated_a_second_later(
    app: Stem, broker: RedisBroker
) -> None:
    rated_app(app)  # 20/s
    specs = tuple(app.limit_specs().values())
    app.enqueue_many("rated", [(i,) for i in range(60)])
    assert len(broker.fetch("default", "c1", 100, specs)) == 1  # the rest wait
    away_ms = server_ms(broker)
    deadline = time.monotonic() + 30
    while server_ms(broker) < away_ms + 1500 and time.monotonic() < deadline:
        pass  # no limiter for 1.5 s
    per_round: list[int] = []
    back_ms = server_ms(broker)
    while server_ms(broker) < back_ms + 1300 and time.monotonic() < deadline:
        per_round.append(broker.limit_round("default", specs).released)

    # Back, it makes up 250 ms of lag at once; from then on the guard and the spacing
    # both hold: the grants a second after the burst are spread out, not a second burst.
    assert 2 <= per_round[0] <= 6
    assert max(per_round[1:]) <= 2
