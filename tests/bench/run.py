"""Running a benchmark module the way its docs say, from the repository root."""

from __future__ import annotations

import subprocess
import sys

from bench.peers.systems import ROOT


def run_bench(
    module: str, *args: str, timeout_s: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` in the repository root; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
