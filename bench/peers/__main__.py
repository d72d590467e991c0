"""``python -m bench.peers``: install the peers' environments, or run the comparison."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import private_redis
from bench.peers import harness
from bench.peers.report import Result, markdown_table, replace_section, shuffled_orders
from bench.peers.systems import PEERS_DIR, ROOT, System, by_name

DOC = ROOT / "docs" / "performance.md"
QUICK = {"reps": 1, "jobs": 1000, "seconds": 2.0}
FULL = {"reps": 3, "jobs": 5000, "seconds": 10.0}


def setup(names: list[str]) -> int:
    """Create ``.venv-peers/<peer>/`` and install its pinned requirements; a peer that fails
    gets a ``SETUP_FAILED`` file with the reason, which the table then shows."""
    status = 0
    for system in by_name(names):
        if system.requirements is None:
            continue
        env = system.env_dir
        (env / "SETUP_FAILED").unlink(missing_ok=True)
        steps = [
            [sys.executable, "-m", "venv", str(env)],
            [
                str(env / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                str(system.requirements),
            ],
        ]
        print(f"{system.name}: installing into {env.relative_to(ROOT)}", flush=True)
        for argv in steps:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
            if done.returncode != 0:
                lines = [
                    line for line in done.stderr.splitlines() if not line.startswith("WARNING")
                ]
                reason = (lines or ["?"])[-1][:200]
                env.mkdir(parents=True, exist_ok=True)
                (env / "SETUP_FAILED").write_text(f"pip install failed: {reason}\n")
                print(f"{system.name}: FAILED: {reason}", flush=True)
                status = 1
                break
    return status


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    ram = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} CPUs ({model}), {ram:.0f} GiB RAM, {platform.platform()}"


def redis_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return next((w[2:] for w in done.stdout.split() if w.startswith("v=")), "?")


def run(args: argparse.Namespace, systems: list[System]) -> list[Result]:
    results = {s.name: Result(s.name) for s in systems}
    for s in systems:
        reason = harness.unavailable(s)
        results[s.name].error = reason
        results[s.name].version = harness.version(s) if reason is None else ""
        results[s.name].bulk_note = s.no_bulk
    by = {s.name: s for s in systems}
    with private_redis() as server, tempfile.TemporaryDirectory() as tmp:
        logs = args.logs or tmp
        Path(logs).mkdir(parents=True, exist_ok=True)  # a --logs folder that is not there yet
        args.redis = f"{server.binary} {redis_version(server.binary)}"
        for rep, order in enumerate(shuffled_orders(list(by), args.reps, args.seed), 1):
            print(f"rep {rep}/{args.reps}: {', '.join(order)}", flush=True)
            for name in order:
                result = results[name]
                if result.error is not None:
                    continue
                started = time.monotonic()
                try:
                    values = harness.measure(
                        by[name], server.url, args.jobs, args.rate, args.seconds, Path(logs)
                    )
                except harness.PeerFailed as exc:
                    result.error = f"failed: {exc}"
                    print(f"  {name}: {result.error}", flush=True)
                    continue
                for metric, value in values.items():
                    result.add(metric, value)
                print(f"  {name}: {time.monotonic() - started:.0f} s", flush=True)
    return [results[s.name] for s in systems]


def section(args: argparse.Namespace, systems: list[System], table: str) -> str:
    command = shlex.join(["python", "-m", "bench.peers", *args.argv])
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} with `{command}` (harness: "
        "[bench/peers/](../bench/peers/), method in "
        "[bench/README.md](../bench/README.md#benchpeers-stem-beside-its-peers-one-job-one-run)).",
        "",
        f"- Machine: {args.machine}; Python {platform.python_version()}; "
        f"redis-server {args.redis.split()[-1]} (private, one per run).",
        f"- Load average (1/5/15 min) before: {args.load_before}; after: {args.load_after}. "
        f"{args.shared}",
        f"- {args.jobs:,} jobs per drain and enqueue case; latency at {args.rate} jobs/s for "
        f"{args.seconds:g} s; {args.reps} interleaved rep(s), order shuffled per rep "
        f"(seed {args.seed}); medians, (min-max) over reps.",
        "",
        table,
        "",
        "Each job does one blocking `INCR` (`bench/peers/job.py`); the harness polls the "
        "counter. Drain: jobs enqueued first, rate = (jobs - 1) / (last - first completion). "
        "Peak RSS: the 1-process worker's whole process tree while draining.",
        "",
        "Worker commands (`URL` = the run's private Redis; each first word from the "
        "system's own environment, `.venv-peers/<peer>/bin/` or `.venv/bin/`):",
        "",
    ]
    for s in systems:
        cmds = " / ".join(f"`{' '.join(a)}`" for a in s.worker(1, "URL"))
        two = " / ".join(f"`{' '.join(a)}`" for a in s.worker(2, "URL"))
        lines.append(f"- {s.name}: {cmds}; 2 processes: {two}. {s.notes}.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["setup"]:
        return setup(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers",
        description="Compare stem with its peers on one job, in one run "
        "(`python -m bench.peers setup` first).",
    )
    parser.add_argument("--quick", action="store_true", help="1 rep, 1,000 jobs, 2 s latency")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--seconds", type=float, help="latency run length")
    parser.add_argument("--rate", type=int, default=200, help="latency run, jobs/s")
    parser.add_argument("--only", nargs="+", metavar="SYSTEM", help="e.g. stem celery ceiling")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 10_000)
    parser.add_argument(
        "--write-docs",
        action=argparse.BooleanOptionalAction,
        help="write the table into docs/performance.md (default: not with --quick)",
    )
    parser.add_argument("--shared", default="", help="a note on the machine's other load")
    parser.add_argument("--logs", help="keep the workers' output in this directory")
    args = parser.parse_args(argv)
    args.argv = argv
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        systems = by_name(args.only)
    except ValueError as exc:
        print(f"bench.peers: {exc}", file=sys.stderr)
        return 2
    if not PEERS_DIR.exists() and any(s.key for s in systems):
        print("bench.peers: no peer environments yet: run `python -m bench.peers setup`")
    args.machine = machine()
    args.load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    results = run(args, systems)
    args.load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    table = markdown_table(results, args.rate)
    text = section(args, systems, table)
    print("\n" + text)
    if args.write_docs if args.write_docs is not None else not args.quick:
        doc = DOC.read_text() if DOC.exists() else ""
        DOC.write_text(replace_section(doc, "## Peers", text, "Performance"))
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
