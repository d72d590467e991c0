"""Redis URLs: Sentinel URLs parsed into sentinels, service and master options; secrets hidden."""

from __future__ import annotations

import pytest

from stem.broker.urls import check_url, parse_sentinel_url, redact
from stem.errors import ConfigError


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://u:p%40ss@10.0.0.5:26379,[::1]:26380/mymaster/3"
        "?socket_timeout=2.5&sentinel_password=sp&ssl_ca_certs=/ca.pem"
    )
    assert parsed.sentinels == [("10.0.0.5", 26379), ("::1", 26380)]
    assert (parsed.service, parsed.db) == ("mymaster", 3)
    assert parsed.master == {
        "username": "u",
        "password": "p@ss",
        "socket_timeout": 2.5,
        "ssl_ca_certs": "/ca.pem",
    }
    assert parsed.sentinel == {"password": "sp"}


def test_the_database_defaults_to_0() -> None:
    assert parse_sentinel_url("redis+sentinel://h:1/m").db == 0


def test_passwords_in_the_user_part_and_in_parameters_are_hidden() -> None:
    url = "redis+sentinel://u:secret@h:1,h:2/m?sentinel_password=other&socket_timeout=1"
    assert redact(url) == "redis+sentinel://u:***@h:1,h:2/m?sentinel_password=***&socket_timeout=1"


def test_a_url_without_secrets_is_shown_as_given() -> None:
    url = "rediss://h:6380/0?ssl_ca_certs=/etc/ca.pem"
    assert redact(url) == url


@pytest.mark.parametrize(
    "url",
    ["rediss://h/0?ssl_ca_cert=/x", "redis://h/0?sentinel_password=x", "unix:///s?dbb=1"],
)
def test_a_parameter_no_redis_connection_takes_is_refused_by_name(url: str) -> None:
    name = url.split("?")[1].split("=", maxsplit=1)[0]
    with pytest.raises(ConfigError, match=f"unknown parameter '{name}'"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "rediss://h/0?ssl_ca_certs=/x&ssl_certfile=/c&ssl_keyfile=/k&ssl_cert_reqs=required",
        "rediss://h/0?ssl_check_hostname=false&ssl_ca_path=/d&ssl_password=x",
        "redis://h/0?socket_timeout=1&health_check_interval=5&client_name=me",
        "unix:///tmp/redis.sock?db=1",
    ],
)
def test_the_parameters_redis_py_takes_are_accepted(url: str) -> None:
    assert check_url(url) == url.split(":", maxsplit=1)[0]
