"""``stem supervise`` runs the rate limiter when ``ratelimiter = true``."""

from __future__ import annotations

from stem.supervise import SuperviseOptions, build_specs


def test_ratelimiter_true_adds_a_ratelimit_child_and_false_leaves_it_out() -> None:
    url = "redis://127.0.0.1:1/0"
    with_it, _ = build_specs(SuperviseOptions("app:app", ratelimiter=True), url)
    without, _ = build_specs(SuperviseOptions("app:app"), url)

    [limiter] = [s for s in with_it if s.name == "ratelimit"]
    assert limiter.argv[-1] == "ratelimit"
    assert "--app" in limiter.argv
    assert [s.name for s in without] == ["worker", "reclaimer", "beat"]
