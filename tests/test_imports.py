"""What a process imports decides most of its memory (issue 17): each check runs a fresh
interpreter and looks at ``sys.modules``.

A process-pool child runs sync tasks and never talks to Redis, so it must not load
redis-py, trio or OpenTelemetry unless a task does; ``stem worker`` must not load the
admin, observe, dlq and schedule commands; nothing loads the OpenTelemetry SDK before it is
configured except redis-py itself (which imports ``opentelemetry.sdk.metrics`` whenever
it is imported: see docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: A sync-only app, as a user's would be: nothing but stem imported.
PLAIN_APP = """
from stem import Stem

app = Stem()


@app.task(name="plain.add")
def add(a: int, b: int) -> int:
    return a + b
"""


def _loaded(code: str, tmp_path: Path, *, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages and stem modules ``code`` leaves in ``sys.modules``."""
    (tmp_path / "plain_app.py").write_text(PLAIN_APP)
    script = textwrap.dedent(code) + textwrap.dedent("""
        import json as _json, sys as _sys
        _names = {m.split(".")[0] for m in _sys.modules} | set(_sys.modules)
        print("\\nMODULES " + _json.dumps(sorted(_names)))
        """)
    # Without OTel settings, and without pytest-cov's subprocess hook (COV_CORE_*,
    # COVERAGE_*): under `--cov` it starts coverage in the child, which imports socket
    # and hashlib itself.
    dropped = ("OTEL_", "COV_CORE_", "COVERAGE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    full_env = {**base, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(json.loads(out.rsplit("MODULES ", 1)[1]))


HEAVY = {"redis", "trio", "opentelemetry", "hiredis", "click"}
#: What a child needs no more than the rest: psutil (stem.config's supervisor check),
#: hashlib with OpenSSL (signing keys), the stdlib's socket and ssl.
CHILD_NEEDS_NOT = HEAVY | {"psutil", "_hashlib", "socket", "ssl"}


def test_importing_stem_loads_neither_redis_nor_trio(tmp_path: Path) -> None:
    loaded = _loaded("import stem", tmp_path)
    assert loaded & {"redis", "trio", "hiredis"} == set()


def test_the_pool_child_module_loads_nothing_heavy(tmp_path: Path) -> None:
    loaded = _loaded("import stem.worker.child", tmp_path)
    assert loaded & CHILD_NEEDS_NOT == set()


def test_a_pool_child_that_ran_a_sync_job_loaded_nothing_heavy(tmp_path: Path) -> None:
    # The child as the worker runs it: its app loaded, one job answered over the protocol.
    request = {
        "task": "plain.add",
        "args": [2, 3],
        "kwargs": {},
        "ctx": {
            "job_id": "j1",
            "task": "plain.add",
            "queue": "default",
            "attempt": 0,
            "deliveries": 1,
            "args": [2, 3],
            "kwargs": {},
            # A traced job: the child puts its trace id on its log records.
            "headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        },
    }
    loaded = _loaded(
        f"""
        import io, json
        from stem.worker import child
        replies = io.StringIO()
        child.serve("plain_app:app", io.StringIO(json.dumps({request!r}) + "\\n"), replies)
        ready, reply = (json.loads(line) for line in replies.getvalue().splitlines())
        assert reply["ok"] and reply["result"] == 5, reply
        """,
        tmp_path,
    )
    assert loaded & CHILD_NEEDS_NOT == set()


def test_the_worker_package_loads_trio_only_when_the_worker_is_asked_for(
    tmp_path: Path,
) -> None:
    assert "trio" not in _loaded("import stem.worker", tmp_path)
    assert "trio" in _loaded("from stem.worker import Worker", tmp_path)


@pytest.mark.parametrize("argv", [["--help"], ["worker", "--help"]], ids=" ".join)
def test_the_cli_loads_no_command_it_does_not_run(tmp_path: Path, argv: list[str]) -> None:
    loaded = _loaded(
        f"""
        import sys
        sys.argv = ["stem", *{argv!r}]
        from stem.cli import main
        try:
            main()
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        """,
        tmp_path,
    )
    others = {"stem.cli.dlq", "stem.cli.observe", "stem.cli.schedule", "stem.cli.limit"}
    assert loaded & others == set()
    assert loaded & {"croniter", "prometheus_client", "redis", "opentelemetry.sdk"} == set()


def test_stem_worker_help_loads_the_otel_sdk_only_when_configured(tmp_path: Path) -> None:
    code = """
        import sys
        sys.argv = ["stem", "worker", "--help"]
        from stem.cli import main
        try:
            main()
        except SystemExit:
            pass
        import stem.observe.tracing as tracing
        tracing.configure_from_env()
        """
    assert "opentelemetry.sdk" not in _loaded(code, tmp_path)
    configured = {"OTEL_TRACES_EXPORTER": "console"}
    assert "opentelemetry.sdk" in _loaded(code, tmp_path, env=configured)
