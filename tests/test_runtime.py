"""What every actor process does around its main loop (stem.runtime)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from stem import Stem
from stem.embedded import free_port
from stem.runtime import run_actor
from tests.worker.conftest import wait_until


def test_an_actor_serves_with_its_start_up_objects_frozen_out_of_the_collector(
    app: Stem,
) -> None:
    gc.unfreeze()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # run_actor configures logging
    seen: list[int] = []

    async def serve(nursery: trio.Nursery) -> None:
        seen.append(gc.get_freeze_count())

    try:
        assert run_actor("test", app, serve) == 0
    finally:
        gc.unfreeze()
        root.handlers[:], root.level = handlers, level
    assert seen and seen[0] > 0


@pytest.mark.parametrize("actor", ["worker", "reclaim", "beat", "ratelimit"])
def test_an_actor_stopped_while_it_waits_for_redis_exits_0_with_a_line_not_killed_by_the_signal(
    actor: str, repo_root: Path, tmp_path: Path
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: it waits for Redis
    log = tmp_path / "actor.log"
    argv = [sys.executable, "-m", "stem.cli", "--redis-url", nobody]
    argv += ["--app", "tests.apps.observed:app", actor]
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=repo_root, env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: "waiting for Redis" in log.read_text(), 30, "the actor to wait")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        proc.kill()
        proc.wait()
    assert "stop requested while waiting for Redis" in log.read_text()
