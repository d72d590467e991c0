"""``stem limit``: definitions from the app's code, overrides set at run time."""

from __future__ import annotations

import json

from stem.broker import RedisBroker
from tests.cli.conftest import Invoke

APP = ("--app", "tests.apps.limited:app")
RATED = "tests.apps.limited.rated"


def test_list_shows_the_codes_limits_and_set_overrides_one_until_cleared(stem: Invoke) -> None:
    before = json.loads(stem(*APP, "limit", "list", "--json").stdout)
    assert {"name": RATED, "concurrency": 0, "rate": "20/s", "burst": 0, "source": "code"} in before

    changed = stem(*APP, "limit", "set", RATED, "--rate", "5/s", "--burst", "2")
    after = json.loads(stem(*APP, "limit", "list", "--json").stdout)
    cleared = json.loads(stem(*APP, "limit", "clear", RATED, "--json").stdout)
    again = json.loads(stem(*APP, "limit", "list", "--json").stdout)

    assert changed.exit_code == 0, changed.stderr
    assert {"name": RATED, "concurrency": 0, "rate": "5/s", "burst": 2, "source": "set"} in after
    assert cleared == {"name": RATED, "cleared": True}
    assert again == before


def test_show_adds_the_limiters_counters(stem: Invoke) -> None:
    stem(*APP, "enqueue", "tests.apps.limited.free", "--args", "[1]")
    shown = json.loads(stem(*APP, "limit", "show", "shared", "--json").stdout)

    assert shown["rate"] == "20/s"
    assert shown["queues"]["default"]["throttled"] == 0


def test_a_bad_rate_is_refused_with_one_line_and_nothing_stored(stem: Invoke) -> None:
    result = stem(*APP, "limit", "set", RATED, "--rate", "fast")
    listed = json.loads(stem(*APP, "limit", "list", "--json").stdout)

    assert result.exit_code != 0
    assert "invalid rate" in result.stderr
    assert all(row["source"] == "code" for row in listed)


def test_set_without_a_change_is_a_usage_error(stem: Invoke) -> None:
    result = stem(*APP, "limit", "set", RATED)

    assert result.exit_code == 2
    assert "give --rate" in result.stderr


def test_list_warns_when_no_rate_limiter_runs(stem: Invoke, broker: RedisBroker) -> None:
    without = stem(*APP, "limit", "list")
    broker.actor_heartbeat("ratelimiter", "ratelimit/test", {}, ttl_s=10)
    with_one = stem(*APP, "limit", "list")

    assert "no rate limiter is running" in without.stderr
    assert "no rate limiter" not in with_one.stderr
