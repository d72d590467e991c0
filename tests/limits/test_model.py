"""The limits model: rates, key templates and the options of ``@app.task``."""

from __future__ import annotations

import pytest

from stem import Stem
from stem.errors import ConfigError
from stem.limits import LOCK, format_rate, parse_rate


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10/s", (10.0, 0)), ("120/m", (2.0, 0)), ("36/h", (0.01, 0)), ("10/s+5", (10.0, 5))],
)
def test_rates_are_read_as_tokens_per_second_and_a_burst(
    text: str, expected: tuple[float, int]
) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["10", "10/d", "0/s", "-1/s", "ten/s", "10/s+"])
def test_a_bad_rate_is_one_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid rate"):
        parse_rate(text)


def test_a_rate_is_shown_in_the_unit_that_keeps_it_whole() -> None:
    assert [format_rate(r) for r in (10.0, 2.0 / 60, 1.0 / 3600)] == ["10/s", "2/m", "1/h"]


def test_a_key_template_is_resolved_from_the_arguments_by_name() -> None:
    app = Stem("redis://unused")

    @app.task(lock="sync:{account_id}")
    def sync(account_id: int, full: bool = False) -> None: ...

    @app.task(rate_limit="5/s", limit_key="{tenant}-{region}", limits=["shared"])
    def notify(tenant: str, user: int, region: str = "eu") -> None: ...

    assert sync.limit_refs((42,), {}) == f"{LOCK}=lock:sync:42"
    assert sync.limit_refs((), {"account_id": 7}) == f"{LOCK}=lock:sync:7"
    assert (
        notify.limit_refs(("acme", 1), {}) == f"{notify.name}={notify.name}:acme-eu,shared=shared"
    )


def test_a_job_without_the_argument_its_key_needs_is_refused_naming_it() -> None:
    app = Stem("redis://unused")

    @app.task(lock="sync:{account_id}")
    def sync(account_id: int = 0, **extra: int) -> None: ...

    @app.task(lock="k:{x}")
    def other(*args: int, **kwargs: int) -> None: ...

    with pytest.raises(ConfigError, match="needs the argument 'x'"):
        other.limit_refs((1,), {})


def test_a_task_without_limits_resolves_to_nothing() -> None:
    app = Stem("redis://unused")

    @app.task
    def plain(a: int) -> None: ...

    assert plain.limit_refs((1,), {}) == ""
    assert app.limit_specs() == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lock": "k:{nope}"}, "not one of its arguments"),
        ({"lock": "k:{a}", "concurrency_limit": 2}, "drop concurrency_limit"),
        ({"limit_key": "{a}"}, "needs rate_limit or concurrency_limit"),
        ({"concurrency_limit": 0}, ">= 1"),
        ({"rate_limit": "fast"}, "invalid rate"),
        ({"limit_key": "{a", "rate_limit": "1/s"}, "invalid key template"),
    ],
)
def test_bad_limit_options_are_refused_at_registration(
    options: dict[str, object], message: str
) -> None:
    app = Stem("redis://unused")

    def task(a: int) -> None: ...

    with pytest.raises(ConfigError, match=message):
        app.task(**options)(task)  # type: ignore[call-overload]


def test_a_resolved_key_with_a_separator_is_refused() -> None:
    app = Stem("redis://unused")

    @app.task(lock="k:{a}")
    def task(a: str) -> None: ...

    with pytest.raises(ConfigError, match="may not be empty"):
        task.limit_refs(("x,y",), {})
