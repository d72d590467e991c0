"""The producer's held connection and packed EVALSHA (``stem.broker.held``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import DataError, NoScriptError

from stem.broker import NewJob, RedisBroker, Settlement
from stem.broker.held import HeldConnection, ScriptCall, pack, pack_command
from stem.envelope import Envelope, new_job_id
from stem.outcome import Verdict

Q = "default"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def new_job() -> NewJob:
    jid = new_job_id()
    return NewJob(jid, Envelope(jid, "t", [1], {}, Q, 0).encode())


def kill_other_clients(redis_url: str) -> None:
    killer = redis.Redis.from_url(redis_url)
    try:
        killer.client_kill_filter(_type="normal", skipme=True)
    finally:
        killer.close()


def test_a_packed_call_is_byte_identical_to_redis_pys(client: redis.Redis) -> None:
    script = client.register_script("return ARGV")
    args = ["plain", "ünïcødé\n{json}", ""]
    call = ScriptCall(script, ["k{q}"], ["prefix", "group"])
    conn = client.connection_pool.get_connection()
    try:
        expected = b"".join(
            conn.pack_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, 1, "k{q}", "prefix", "group", *args
            )
        )
    finally:
        client.connection_pool.release(conn)
    assert call.pack(args) == expected
    assert pack([b"ECHO", b"x"]) == b"*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n"


def test_a_call_after_the_server_lost_its_scripts_loads_the_script_and_runs(
    client: redis.Redis,
) -> None:
    script = client.register_script("return ARGV[2]")
    held = HeldConnection(client)
    client.script_flush()
    assert held.evalsha(ScriptCall(script, [], ["a"]), ["b"]) == b"b"
    held.close()


def test_the_held_connection_is_reused_and_reconnects_after_the_server_drops_it(
    client: redis.Redis,
) -> None:
    held = HeldConnection(client)
    assert held.execute(pack([b"ECHO", b"one"])) == b"one"
    first = held.execute(pack([b"CLIENT", b"ID"]))
    assert held.execute(pack([b"CLIENT", b"ID"])) == first  # one connection, held
    client.client_kill_filter(_id=first)
    assert held.execute(pack([b"ECHO", b"two"])) == b"two"  # reconnected, retried
    assert held.execute(pack([b"CLIENT", b"ID"])) != first
    held.close()
    assert len(client.connection_pool._in_use_connections) == 0  # given back on close


def test_threads_sharing_one_held_connection_each_get_their_own_replies(
    client: redis.Redis,
) -> None:
    held = HeldConnection(client)
    wrong: list[tuple[bytes, object]] = []
    go = threading.Barrier(8)

    def work(n: int) -> None:
        go.wait()
        for i in range(300):
            token = b"%d-%d" % (n, i)
            reply = held.execute(pack([b"ECHO", token]))
            if reply != token:
                wrong.append((token, reply))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    held.close()
    # Threads that found the held connection busy borrowed pool connections and gave
    # them back: none stays checked out.
    assert len(client.connection_pool._in_use_connections) == 0


def test_a_broker_enqueues_from_many_threads_and_after_its_connection_is_killed(
    redis_url: str, namespace: str
) -> None:
    broker = RedisBroker(redis_url, namespace=namespace)
    jobs = [[new_job() for _ in range(100)] for _ in range(6)]
    got: list[list[tuple[str, bool]]] = [[] for _ in jobs]

    def work(n: int) -> None:
        for j in jobs[n]:
            got[n] += broker.enqueue(Q, [j])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [[(j.id, True) for j in batch] for batch in jobs]
    kill_other_clients(redis_url)
    last = new_job()
    assert broker.enqueue(Q, [last]) == [(last.id, True)]
    assert broker.queue_stats(Q).ready == 601
    broker.close()


def test_a_forked_child_holds_its_own_connection_not_its_parents(client: redis.Redis) -> None:
    held = HeldConnection(client)
    parent_id = held.execute(pack([b"CLIENT", b"ID"]))
    pid = os.fork()
    if pid == 0:  # the child: a reply on the parent's socket would be a mix-up
        code = 1
        try:
            code = 0 if held.execute(pack([b"CLIENT", b"ID"])) != parent_id else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert held.execute(pack([b"CLIENT", b"ID"])) == parent_id  # the parent's still works
    held.close()


def test_a_forked_child_can_close_while_the_parent_was_mid_call(client: redis.Redis) -> None:
    held = HeldConnection(client)
    held.execute(pack([b"PING"]))
    held._lock.acquire()  # another thread of the parent is mid-call at the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: close must not wait for a lock nobody will release
            code = 1
            try:
                alarm = threading.Timer(10, lambda: os._exit(2))
                alarm.start()
                held.close()
                code = 0 if held.execute(pack([b"PING"])) else 1
            finally:
                os._exit(code)
    finally:
        held._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    held.close()


def test_single_enqueues_check_out_one_connection_not_one_per_call(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = RedisBroker(redis_url, namespace=namespace)
    pool = broker.client.connection_pool
    checkouts: list[object] = []
    checkout = pool.get_connection

    def counted() -> object:
        checkouts.append(checkout())
        return checkouts[-1]

    # The first enqueue may also load the script (a server that has not seen it yet)
    # and registers the queue: each of those takes a pool connection once.
    broker.enqueue(Q, [new_job()])
    monkeypatch.setattr(pool, "get_connection", counted)
    for _ in range(50):
        broker.enqueue(Q, [new_job()])
    assert checkouts == []  # all 50 went over the connection the first one holds
    broker.close()


def test_a_packed_command_is_byte_identical_to_redis_pys_and_refuses_what_it_refuses(
    client: redis.Redis,
) -> None:
    args = ("EVALSHA", "0" * 40, 2, "k{q}", b"raw\x00bytes", "ünïcødé", 1500, "")
    conn = client.connection_pool.get_connection()
    try:
        expected = b"".join(conn.pack_command(*args))  # type: ignore[no-untyped-call]
    finally:
        client.connection_pool.release(conn)
    assert pack_command(args) == expected
    with pytest.raises(DataError):
        pack_command(("SET", "k", None))


def test_a_batch_on_the_held_connection_replies_in_order_with_each_refusal_in_its_place(
    client: redis.Redis,
) -> None:
    held = HeldConnection(client)
    batch = [pack([b"ECHO", b"a"]), pack_command(("EVALSHA", "0" * 40, 0)), pack([b"ECHO", b"b"])]
    first, refused, last = held.execute_each(batch)
    assert (first, last) == (b"a", b"b")
    assert isinstance(refused, NoScriptError)
    # A connection the server dropped is replaced and the batch still goes out whole.
    client.client_kill_filter(_id=held.execute(pack([b"CLIENT", b"ID"])))
    assert held.execute_each([pack([b"ECHO", b"c"]), pack([b"ECHO", b"d"])]) == [b"c", b"d"]
    held.close()
    assert len(client.connection_pool._in_use_connections) == 0


def test_a_broker_fetches_and_settles_after_the_server_lost_its_scripts(
    redis_url: str, namespace: str, client: redis.Redis
) -> None:
    broker = RedisBroker(redis_url, namespace=namespace)
    try:
        broker.enqueue(Q, [new_job(), new_job()])
        client.script_flush()
        first, second = broker.fetch(Q, "c1", 2)  # fetch.lua reloaded by the held call
        client.script_flush()
        settled = broker.settle(  # complete.lua and bury.lua reloaded in a second round
            [
                Settlement(first, Verdict.COMPLETE, "1"),
                Settlement(second, Verdict.BURY, '{"type": "E"}', reason="test"),
            ]
        )
        assert settled == [1, 1]
        assert broker.job(Q, first.job_id or "").state.value == "succeeded"  # type: ignore[union-attr]
        assert broker.job(Q, second.job_id or "").state.value == "dead"  # type: ignore[union-attr]
    finally:
        broker.close()


class Interrupted(BaseException):
    """What a soft time limit or a KeyboardInterrupt raises into a thread mid-call."""


def test_a_call_interrupted_between_its_send_and_its_reply_leaves_nothing_for_the_next(
    client: redis.Redis,
) -> None:
    held = HeldConnection(client)
    assert held.execute(pack([b"ECHO", b"warm"])) == b"warm"
    conn = held._conn

    def interrupted(*_args: object, **_kwargs: object) -> object:
        raise Interrupted

    conn.read_response = interrupted  # the reply of the BLPOP below is still on its way
    with pytest.raises(Interrupted):
        held.execute(pack([b"BLPOP", b"nothing{q}", b"0.2"]))
    del conn.read_response
    # Read as its own, the BLPOP's late reply (nil) would have answered this ECHO.
    assert held.execute(pack([b"ECHO", b"mine"])) == b"mine"
    with pytest.raises(Interrupted):
        conn.read_response = interrupted
        held.execute_each([pack([b"BLPOP", b"nothing{q}", b"0.2"]), pack([b"ECHO", b"x"])])
    del conn.read_response
    assert held.execute_each([pack([b"ECHO", b"y"])]) == [b"y"]
    held.close()
