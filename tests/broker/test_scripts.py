"""How scripts are sent (``stem.broker.scripts``): each with only the lib.lua helpers and
tables it uses and its constants inlined (a standalone script with neither), and it still
round-trips the Python constants."""

from __future__ import annotations

import pytest
import redis

from stem.broker.keys import JobField, Suffix
from stem.broker.scripts import inline_constants, source
from stem.states import JobState


def test_the_enqueue_script_is_sent_alone_with_its_constants_inlined() -> None:
    sent = source("enqueue")
    assert "local function" not in sent  # no lib.lua helpers
    assert "local K =" not in sent and "K.JOB" not in sent  # no tables to build per call
    assert f"'{Suffix.JOB.value}'" in sent


def test_a_script_is_sent_with_only_the_helpers_and_tables_it_uses() -> None:
    fetch, renew = source("fetch"), source("renew")
    assert "local function read_record(" in fetch  # it calls it
    assert "local function take_limits(" in fetch and "local function rate_state(" in fetch
    assert "local function requeue(" not in fetch  # nothing it calls does
    assert "local TERMINAL =" in fetch  # used as a whole: TERMINAL[state]
    assert "local K =" not in fetch and "K.JOB" not in fetch  # inlined instead
    assert "local function read_record(" not in renew and "local TERMINAL" not in renew


def test_inlining_spells_each_constant_as_its_python_value() -> None:
    script = "return {F.STATE, S.QUEUED, K.STREAM}"
    assert inline_constants(script).endswith(
        f"return {{'{JobField.STATE.value}', '{JobState.QUEUED.value}', '{Suffix.STREAM.value}'}}"
    )


@pytest.mark.parametrize("code", ["return TERMINAL[x]", "local t = F", "return STATES"])
def test_a_standalone_script_may_not_use_a_whole_table(code: str) -> None:
    with pytest.raises(ValueError, match="cannot use the table"):
        inline_constants(code)


def test_the_enqueue_script_runs_on_the_server_as_sent(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        # One ready job: '1' created; the stream and its group exist afterwards.
        job = "j1\n0\n0\n60\n\n0\n\n\n{}"
        reply = client.eval(source("enqueue"), 1, "s:{q}:delayed", "s:{q}:", "workers", job)
        assert reply == b"1"  # every job created: the flags alone
        assert [g["name"] for g in client.xinfo_groups("s:{q}:p0")] == [b"workers"]
    finally:
        client.close()


def test_a_deadline_client_keeps_its_deadline_whatever_the_url_asks() -> None:
    from stem.broker.connection import open_client

    client = open_client("redis://127.0.0.1:1/0?socket_timeout=5", deadline_s=0.5)
    assert isinstance(client, redis.Redis)
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.5, 0.5)
    finally:
        client.close()
