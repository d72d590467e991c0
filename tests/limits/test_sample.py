"""samples/limits.py runs as it is, against a real worker and rate limiter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

Procs = list[subprocess.Popen[bytes]]


def test_the_limits_sample_runs_at_its_limits(
    redis_url: str, namespace: str, repo_root: Path, procs: Procs
) -> None:
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    env |= {"STEM_REDIS_URL": redis_url, "STEM_NAMESPACE": namespace}
    base = [sys.executable, "-m", "stem", "--app", "samples.limits:app"]
    for command in ("worker", "ratelimit"):
        procs.append(
            subprocess.Popen([*base, command], cwd=repo_root, env=env, start_new_session=True)
        )

    run = subprocess.run(
        [sys.executable, "-m", "samples.limits"],
        cwd=repo_root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:3] == ["synced 1", "synced 1", "synced 2"]
    span = float(lines[3].split(" over ")[1].split(" s")[0])
    assert span >= 9 / 5 * 0.9  # 10 starts at 5/s: at least 1.8 s apart end to end
