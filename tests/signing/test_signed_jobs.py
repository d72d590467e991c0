"""Signed jobs end to end: real ``stem worker`` processes, a real Redis, the CLI.

Each test's workers get their keys from their environment (``tests.apps.signed:app``);
producers are apps made here with their own keys. A task records each run in a file,
so "not run" is checked, not assumed.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stem import JobFailed, Stem
from stem.cli import main
from stem.handle import JobHandle
from tests.worker.conftest import lines, wait_until

APP = "tests.apps.signed:app"
RECORD = "tests.apps.signed.record"
FAILS_ONCE = "tests.apps.signed.fails_once"
FAILS = "tests.apps.signed.fails"
SECRET1 = b"k1-secret-\x00\xff-0123456789abcdef"
SECRET2 = b"k2-secret-0123456789abcdef-\x01\x02"
SECRET9 = b"k9-secret-0123456789abcdef-zzzz"
Procs = list[subprocess.Popen[bytes]]


def keys_env(**keys: bytes) -> str:
    """``STEM_SIGNING_KEYS`` for ``keys`` (key id -> secret)."""
    return ",".join(f"{kid}:{base64.b64encode(s).decode()}" for kid, s in keys.items())


def start_worker(
    redis_url: str,
    namespace: str,
    root: Path,
    log_dir: Path,
    name: str,
    keys: str | None,
    *extra: str,
) -> subprocess.Popen[bytes]:
    """A ``stem worker`` on the signed app with ``keys`` (None: no signing); its stderr
    goes to ``<log_dir>/<name>.err`` (debug level, for the secret grep)."""
    argv = [
        sys.executable,
        "-m",
        "stem",
        "--redis-url",
        redis_url,
        "--namespace",
        namespace,
        "--app",
        APP,
        "worker",
        "--name",
        name,
        "--log-level",
        "debug",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEM_SIGNING")}
    env["PYTHONPATH"] = str(root)
    if keys is not None:
        env["STEM_SIGNING_KEYS"] = keys
    with (log_dir / f"{name}.err").open("wb") as err:
        return subprocess.Popen(argv, cwd=root, env=env, stderr=err, start_new_session=True)


def producer(redis_url: str, namespace: str, current: str | None, **keys: object) -> Stem:
    return Stem(redis_url, namespace=namespace, signing_keys=keys or None, signing_key_id=current)


def cli(
    redis_url: str, namespace: str, *args: str, keys: str | None = None, key_id: str | None = None
) -> Result:
    env = {"STEM_SIGNING_KEYS": keys, "STEM_SIGNING_KEY_ID": key_id}
    return CliRunner(env=env).invoke(
        main, ["--redis-url", redis_url, "--namespace", namespace, *args]
    )


def dead_reasons(app: Stem) -> dict[str, str]:
    return {d.job_id: d.reason for d in app.broker.dead_entries("default", count=1000)}


def wait_dead(app: Stem, count: int) -> None:
    wait_until(lambda: app.broker.queue_stats("default").dead >= count, what=f"{count} dead")


def tamper(app: Stem, handle: JobHandle, old: str, new: str) -> None:
    """Change the stored envelope of ``handle``'s job (as someone with Redis access can)."""
    key = app.broker.keys.queue("default").job(handle.id)
    env = app.broker.client.hget(key, "env").decode()
    assert old in env
    app.broker.client.hset(key, "env", env.replace(old, new))


def test_a_tampered_job_is_dead_lettered_unrun_and_replays_only_when_resigned(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    runs = tmp_path / "runs.txt"
    app = producer(redis_url, namespace, "k1", k1=SECRET1)
    victim = app.enqueue(RECORD, [str(runs), "victim"])
    honest = app.enqueue(RECORD, [str(runs), "honest"])
    tamper(app, victim, '"victim"', '"evil"')
    procs.append(
        start_worker(redis_url, namespace, repo_root, tmp_path, "w1", keys_env(k1=SECRET1))
    )
    assert honest.result(timeout_s=30) == "honest"
    wait_dead(app, 1)
    assert dead_reasons(app) == {victim.id: "bad-signature"}
    with pytest.raises(JobFailed, match="bad-signature"):
        victim.result(timeout_s=5)
    [dead] = app.broker.dead_entries("default")
    assert json.loads(dead.error)["message"] == "the signature does not match (key id 'k1')"

    refused = cli(
        redis_url, namespace, "dlq", "replay", victim.id, keys=keys_env(k1=SECRET1), key_id="k1"
    )
    assert refused.exit_code == 2, refused.output
    assert "bad signature" in refused.output and "--resign" in refused.output
    assert dead_reasons(app) == {victim.id: "bad-signature"}  # nothing replayed
    no_key = cli(redis_url, namespace, "dlq", "replay", "--resign", victim.id)
    assert (no_key.exit_code, "--resign needs a signing key" in no_key.output) == (2, True)

    resigned = cli(
        redis_url,
        namespace,
        "dlq",
        "replay",
        "--resign",
        victim.id,
        keys=keys_env(k1=SECRET1),
        key_id="k1",
    )
    assert (resigned.exit_code, resigned.output.strip()) == (0, victim.id)
    assert victim.result(timeout_s=30) == "evil"  # the operator vouched for what is there now
    assert Counter(lines(runs)) == Counter({"honest": 1, "evil": 1})


def test_rotation_runs_jobs_signed_with_both_keys_and_counts_what_each_key_still_signs(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    runs = tmp_path / "runs.txt"
    old = producer(redis_url, namespace, "k1", k1=SECRET1)
    new = producer(redis_url, namespace, "k2", k2=SECRET2, k1=SECRET1)  # switched producers
    handles = [old.enqueue(RECORD, [str(runs), f"old{i}"]) for i in range(4)]
    handles += [old.enqueue(RECORD, [str(runs), "old-late"], delay_s=1.0)]
    handles += [old.enqueue(FAILS_ONCE, [str(runs), "old-retried"])]
    handles += new.enqueue_many(RECORD, [[str(runs), f"new{i}"] for i in range(3)])
    handles += [new.enqueue(FAILS_ONCE, [str(runs), "new-retried"])]

    counted = cli(redis_url, namespace, "observe", "signing", "--json")
    assert counted.exit_code == 0, counted.output
    assert json.loads(counted.output) == [
        {"key_id": "k1", "ready": 5, "pending": 0, "delayed": 1, "dead": 0, "total": 6},
        {"key_id": "k2", "ready": 4, "pending": 0, "delayed": 0, "dead": 0, "total": 4},
    ]

    both = keys_env(k2=SECRET2, k1=SECRET1)  # every worker holds both keys
    procs.append(start_worker(redis_url, namespace, repo_root, tmp_path, "w1", both))
    procs.append(start_worker(redis_url, namespace, repo_root, tmp_path, "w2", both))
    results = [h.result(timeout_s=60) for h in handles]
    assert results == [
        *(f"old{i}" for i in range(4)),
        "old-late",
        "old-retried",
        *(f"new{i}" for i in range(3)),
        "new-retried",
    ]
    assert Counter(lines(runs))["old-retried"] == 2  # the retry kept a valid signature
    assert json.loads(cli(redis_url, namespace, "observe", "signing", "--json").output) == []

    # k1 signs nothing that is left: remove it. A straggler signed with it is refused.
    for p in procs:
        p.terminate()
        p.wait(timeout=30)
    procs.append(
        start_worker(redis_url, namespace, repo_root, tmp_path, "w3", keys_env(k2=SECRET2))
    )
    straggler = old.enqueue(RECORD, [str(runs), "straggler"])
    assert new.enqueue(RECORD, [str(runs), "after"]).result(timeout_s=30) == "after"
    wait_dead(new, 1)
    [dead] = new.broker.dead_entries("default")
    assert (dead.job_id, dead.reason) == (straggler.id, "bad-signature")
    assert "unknown key id 'k1'" in dead.error
    assert "straggler" not in lines(runs)
    counted = json.loads(cli(redis_url, namespace, "observe", "signing", "--json").output)
    assert counted == [
        {"key_id": "k1", "ready": 0, "pending": 0, "delayed": 0, "dead": 1, "total": 1}
    ]


def test_a_signing_worker_refuses_unsigned_and_unknown_key_jobs_and_an_unsigned_worker_runs_all(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    runs = tmp_path / "runs.txt"
    plain = producer(redis_url, namespace, None)
    stranger = producer(redis_url, namespace, "k9", k9=SECRET9)
    signed = producer(redis_url, namespace, "k1", k1=SECRET1)
    unsigned = plain.enqueue(RECORD, [str(runs), "unsigned"])
    unknown = stranger.enqueue(RECORD, [str(runs), "unknown"])
    good = signed.enqueue(RECORD, [str(runs), "good"])
    worker = start_worker(redis_url, namespace, repo_root, tmp_path, "w1", keys_env(k1=SECRET1))
    procs.append(worker)
    assert good.result(timeout_s=30) == "good"
    wait_dead(signed, 2)
    assert dead_reasons(signed) == {unsigned.id: "bad-signature", unknown.id: "bad-signature"}
    errors = {
        d.job_id: json.loads(d.error)["message"] for d in signed.broker.dead_entries("default")
    }
    assert errors == {
        unsigned.id: "the envelope is not signed",
        unknown.id: "the envelope is signed with unknown key id 'k9'",
    }
    assert lines(runs) == ["good"]
    assert worker.poll() is None  # refusals cost the jobs, never the worker

    worker.terminate()
    worker.wait(timeout=30)
    procs.append(start_worker(redis_url, namespace, repo_root, tmp_path, "w2", None))
    both = [plain.enqueue(RECORD, [str(runs), "plain"]), signed.enqueue(RECORD, [str(runs), "s"])]
    assert [h.result(timeout_s=30) for h in both] == ["plain", "s"]  # signing is opt-in


def test_a_reclaimed_and_a_replayed_signed_job_still_verify_and_run(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    runs = tmp_path / "runs.txt"
    app = producer(redis_url, namespace, "k1", k1=SECRET1)
    keys = keys_env(k1=SECRET1)
    held = app.enqueue(RECORD, [str(runs), "held", 2.0])
    first = start_worker(redis_url, namespace, repo_root, tmp_path, "same", keys)
    procs.append(first)
    wait_until(lambda: lines(runs) == ["held"], what="the job to start")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    procs.append(start_worker(redis_url, namespace, repo_root, tmp_path, "same", keys))
    assert held.result(timeout_s=60) == "held"  # recovered, verified, run again
    assert lines(runs) == ["held", "held"]

    failing = app.enqueue(FAILS, [str(runs), "failing"])
    with pytest.raises(JobFailed, match="max-retries"):
        failing.result(timeout_s=30)
    replayed = cli(redis_url, namespace, "dlq", "replay", failing.id)  # no key, no --resign
    assert (replayed.exit_code, replayed.output.strip()) == (0, failing.id)
    wait_until(lambda: Counter(lines(runs))["failing"] == 8, what="the replayed runs")
    with pytest.raises(JobFailed, match="max-retries"):
        failing.result(timeout_s=30)  # its retries ran out again: it ran, never refused
    assert dead_reasons(app) == {failing.id: "max-retries"}


def test_an_ed25519_worker_with_only_the_public_key_runs_signed_jobs_and_refuses_forged_ones(
    redis_url: str, namespace: str, repo_root: Path, tmp_path: Path, procs: Procs
) -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    runs = tmp_path / "runs.txt"
    app = producer(redis_url, namespace, "e1", e1=private)
    good = app.enqueue(RECORD, [str(runs), "good"])
    forged = app.enqueue(RECORD, [str(runs), "real"])
    tamper(app, forged, '"real"', '"forged"')
    keys = f"e1:ed25519-public:{base64.b64encode(public).decode()}"
    procs.append(start_worker(redis_url, namespace, repo_root, tmp_path, "w1", keys))
    assert good.result(timeout_s=30) == "good"
    wait_dead(app, 1)
    assert dead_reasons(app) == {forged.id: "bad-signature"}
    assert lines(runs) == ["good"]
