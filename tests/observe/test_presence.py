"""Reclaimer, beat and rate limiter announce themselves in Redis while they run, so an
operator (``stem observe``, ``stem limit list``, ``stem_actors_alive``) sees one missing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from stem import Stem
from stem.beat.service import serve_beat
from stem.observe.prometheus import exposition
from stem.ratelimit import serve_ratelimiter
from stem.reclaimer import serve_reclaimer

DEADLINE_S = 10.0

Serve = Callable[..., Awaitable[Any]]


async def wait_for_actors(app: Stem, kind: str, count: int) -> list[dict[str, Any]]:
    with trio.fail_after(DEADLINE_S):
        while len(records := await trio.to_thread.run_sync(app.broker.actors, kind)) != count:
            await trio.sleep(0.05)
    return records


@pytest.mark.parametrize(
    ("kind", "serve"),
    [("reclaimer", serve_reclaimer), ("beat", serve_beat), ("ratelimiter", serve_ratelimiter)],
)
async def test_an_actor_is_listed_while_it_runs_and_gone_once_it_stops(
    app: Stem, kind: str, serve: Serve
) -> None:
    assert await trio.to_thread.run_sync(app.broker.actors, kind) == []

    async with trio.open_nursery() as nursery:
        await nursery.start(serve, app)
        (record,) = await wait_for_actors(app, kind, 1)
        nursery.cancel_scope.cancel()

    assert record["kind"] == kind
    assert isinstance(record["pid"], int)
    assert record["host"]
    assert await trio.to_thread.run_sync(app.broker.actors, kind) == []


async def test_an_actor_that_stops_beating_drops_out_after_its_ttl(app: Stem) -> None:
    app.broker.actor_heartbeat("reclaimer", "reclaimer/gone/1", {"pid": 1}, ttl_s=0.2)
    assert len(app.broker.actors("reclaimer")) == 1

    await wait_for_actors(app, "reclaimer", 0)

    assert app.broker.client.zcard(app.broker.keys.actors("reclaimer")) == 0


def test_the_scrape_counts_live_actors_of_each_kind(app: Stem) -> None:
    app.broker.actor_heartbeat("beat", "beat/a", {}, ttl_s=10)
    app.broker.actor_heartbeat("beat", "beat/b", {}, ttl_s=10)
    app.broker.actor_heartbeat("reclaimer", "reclaimer/a", {}, ttl_s=10)

    text = exposition(app.broker)

    assert 'stem_actors_alive{actor="beat"} 2.0' in text
    assert 'stem_actors_alive{actor="reclaimer"} 1.0' in text
    assert 'stem_actors_alive{actor="ratelimiter"} 0.0' in text
    assert 'stem_actors_alive{actor="worker"} 0.0' in text
