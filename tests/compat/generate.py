"""Write ``v1.json``: Redis data as stem with envelope version 1 leaves it. Run ONCE per format.

    .venv/bin/python -m tests.compat.generate [OUT]      # default tests/compat/v1.json

The file is the contract that later versions are held to (``test_compat.py`` loads it and
runs today's code over it), so do not regenerate it to make a failing test pass: a new
envelope version gets a new file (``v2.json``) beside this one.

What it writes, in namespace ``compat`` of a private redis-server:

- dead-letter entries: an ``explode`` job that failed with no retries left, and a job of a
  task that does not exist (both after a real ``stem worker --burst``);
- ready jobs: ``add`` (sync, positional args), ``greet`` (async, kwargs, non-ASCII text,
  another queue, priority 7), an ``add`` with an idempotency key, and a delayed ``add``
  (due one second after generation, so long due when the tests run);
- schedule entries: interval (jittered, disabled), cron with a time zone, one-off, each
  added through ``stem schedule add``, and a manual run record (``stem schedule run``).

Worker heartbeats are left out (they describe processes, not data).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import stem
from stem.embedded import EmbeddedRedis
from tests.compat import redisdump, tasks

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NAMESPACE = "compat"


def _cli(url: str, *argv: str) -> str:
    from stem.cli import main

    result = CliRunner().invoke(main, ["--redis-url", url, "--namespace", NAMESPACE, *argv])
    if result.exit_code != 0:
        raise RuntimeError(f"stem {' '.join(argv)}: {result.output}")
    return result.output


def _burst(url: str) -> None:
    argv = [sys.executable, "-m", "stem", "--redis-url", url, "--namespace", NAMESPACE]
    argv += ["--app", "tests.compat.tasks:app", "worker", "--burst", "--queues", "default,other"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(argv, cwd=ROOT, env=env, check=True, timeout=120)


def generate(url: str) -> dict[str, Any]:
    app = tasks.app
    app.connect(url, namespace=NAMESPACE)
    tasks.explode.enqueue("disk full")
    app.enqueue("tests.compat.tasks.vanished", [1])
    _burst(url)
    dead = {e.job_id: e.reason for e in app.broker.dead_entries("default")}
    results = {
        tasks.add.enqueue(2, 3).id: 5,
        app.enqueue(tasks.greet, ["wörld"], {"punctuation": "?"}, priority=7).id: "hello, wörld?",
        app.enqueue(tasks.add, [20, 22], idempotency_key="compat-1").id: 42,
        app.enqueue(tasks.add, [1, 1], delay_s=1.0).id: 2,
    }
    add = ["schedule", "add"]
    _cli(url, *add, "every-5m", "tests.compat.tasks.add", "--every", "300", "--args", "[1, 2]",
         "--jitter", "30", "--disabled")  # fmt: skip
    _cli(url, *add, "nightly", "tests.compat.tasks.greet", "--cron", "30 2 * * *", "--tz",
         "Europe/Berlin", "--kwargs", '{"name": "night"}', "--missed", "run_once")  # fmt: skip
    _cli(url, *add, "once", "tests.compat.tasks.add", "--at", "2030-01-01T00:00:00Z",
         "--args", "[3, 4]", "--queue", "other", "--priority", "3")  # fmt: skip
    _cli(url, "schedule", "run", "nightly")  # its job is one more ready job
    manual = [jid for jid in _ready_ids(app) if jid not in results]
    results.update({jid: "hello, night!" for jid in manual})
    doc = {
        "about": "stem Redis data, envelope version 1; see tests/compat/generate.py",
        "generated_by": f"stem {stem.__version__}",
        "namespace": NAMESPACE,
        "expect": {
            "results": results,
            "dead": dead,
            "schedules": ["every-5m", "nightly", "once"],
        },
        "keys": redisdump.dump(app.broker.client, NAMESPACE, skip=("worker",)),
    }
    app.close()
    return doc


def _ready_ids(app: stem.Stem) -> list[str]:
    client = app.broker.client
    ids: list[str] = []
    for key in client.scan_iter(match=f"{NAMESPACE}:*:p*"):
        if client.type(key) == b"stream":
            ids += [f[b"id"].decode() for _, f in client.xrange(key)]
    return ids


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "v1.json"
    with tempfile.TemporaryDirectory() as data, EmbeddedRedis(Path(data), appendonly=False) as r:
        doc = generate(r.url)
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
    print(f"wrote {out}: {len(doc['keys'])} keys")


if __name__ == "__main__":
    main()
