"""No signing secret in anything stem writes: logs, Redis, CLI output, errors, reprs.

One run touches every writer: a debug-level worker (text and JSON logs) refusing a
tampered, an unsigned and an unknown-key job and running a good one; the CLI listing,
showing, refusing and re-signing replays, counting key ids and listing workers (their
heartbeats); a bad key setting's error. Then every byte is searched for each secret in
each form it could be written in.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from stem import Stem
from tests.signing.test_signed_jobs import (
    RECORD,
    SECRET1,
    SECRET9,
    cli,
    keys_env,
    producer,
    start_worker,
    tamper,
    wait_dead,
)
from tests.worker.conftest import wait_until

Procs = list[subprocess.Popen[bytes]]


def forms(secret: bytes) -> list[bytes]:
    """Every spelling of ``secret`` that could end up in text."""
    b64 = base64.b64encode(secret)
    return [
        secret,
        b64,
        b64.rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        secret.hex().encode(),
        repr(secret).encode()[2:-1],
    ]


def redis_bytes(app: Stem) -> bytes:
    """Every key of the app's namespace: its DUMP and its readable contents."""
    client = app.broker.client
    out = []
    for key in client.scan_iter(match=f"{app.namespace}:*"):
        out += [key, client.dump(key) or b""]
        kind = client.type(key).decode()
        if kind == "hash":
            out += [k + v for k, v in client.hgetall(key).items()]
        elif kind == "string":
            out.append(client.get(key))
        elif kind == "stream":
            out += [repr(e).encode() for e in client.xrange(key)]
        elif kind == "zset":
            out += client.zrange(key, 0, -1)
        elif kind == "list":
            out += client.lrange(key, 0, -1)
    return b"\n".join(out)


def test_no_secret_appears_in_logs_redis_cli_output_or_reprs(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    runs = tmp_path / "runs.txt"
    app = producer(redis_url, namespace, "k1", k1=SECRET1)
    env = keys_env(k1=SECRET1)
    tampered = app.enqueue(RECORD, [str(runs), "a"])
    tamper(app, tampered, '"a"', '"b"')
    producer(redis_url, namespace, None).enqueue(RECORD, [str(runs), "unsigned"])
    producer(redis_url, namespace, "k9", k9=SECRET9).enqueue(RECORD, [str(runs), "k9"])
    good = app.enqueue(RECORD, [str(runs), "good"])
    procs.append(start_worker(redis_url, namespace, repo_root, tmp_path, "text", env))
    assert good.result(timeout_s=30) == "good"
    wait_dead(app, 3)

    outputs = [
        cli(redis_url, namespace, *args, keys=env, key_id="k1")
        for args in (
            ("observe", "signing", "--json"),
            ("observe", "signing"),
            ("observe", "workers", "--json"),
            ("observe", "queues", "--json"),
            ("dlq", "list", "--json"),
            ("dlq", "show", tampered.id, "--json"),
            ("dlq", "show", tampered.id),
            ("dlq", "replay", "--all"),
            ("dlq", "replay", "--resign", tampered.id, "--json"),
            ("result", "get", good.id, "--json"),
        )
    ]
    assert [o.exit_code for o in outputs] == [0, 0, 0, 0, 0, 0, 0, 2, 0, 0], [
        o.output for o in outputs
    ]
    bad_setting = cli(
        redis_url,
        namespace,
        "observe",
        "signing",
        keys="k1:" + base64.b64encode(SECRET1).decode() + ":x",
        key_id="k1",
    )
    assert bad_setting.exit_code == 2 and "STEM_SIGNING_KEYS" in bad_setting.output
    assert tampered.result(timeout_s=30) == "b"  # the re-signed replay ran

    procs[0].terminate()
    procs[0].wait(timeout=30)
    producer(redis_url, namespace, None).enqueue(RECORD, [str(runs), "unsigned-too"])
    procs.append(
        start_worker(redis_url, namespace, repo_root, tmp_path, "json", env, "--json-logs")
    )
    wait_dead(app, 3)  # the unsigned one joined the two left after the replay
    wait_until(lambda: b"bad-signature" in (tmp_path / "json.err").read_bytes(), what="log")
    procs[1].terminate()
    procs[1].wait(timeout=30)

    written = [
        (tmp_path / "text.err").read_bytes(),
        (tmp_path / "json.err").read_bytes(),
        redis_bytes(app),
        *(o.output.encode() for o in [*outputs, bad_setting]),
        repr(app).encode(),
        repr(vars(app)).encode(),
    ]
    assert b"bad-signature" in written[0] and b"bad-signature" in written[1]  # both logged
    everything = b"\n".join(written)
    for secret in (SECRET1, SECRET9):
        leaked = [f for f in forms(secret) if f in everything]
        assert leaked == []
