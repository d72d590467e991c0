"""``python -m chaos run|list``: run chaos scenarios and print what each proved.

::

    python -m chaos list
    python -m chaos run                          # every scenario, full mode
    python -m chaos run latency-50ms reset-peer --short
    python -m chaos run --duration 20 --json

Exit codes: 0 every scenario held its invariants, 1 one did not (a loss, an unexplained
duplicate, a process left behind...), 2 bad arguments (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from chaos.checker import Verdict
from chaos.scenarios import Options, load_all, run_scenario

COLUMNS = ("scenario", "jobs", "lost", "duplicates", "dead", "recovery s", "verdict")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"chaos: error: {message}", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m chaos", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="name every scenario with one line")
    run = sub.add_parser("run", help="run scenarios (default: all)")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    run.add_argument("--duration", type=float, metavar="S", help="hold each fault S seconds")
    run.add_argument("--short", action="store_true", help="the short mode CI runs")
    run.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return p


def table(verdicts: list[Verdict]) -> str:
    rows = [COLUMNS] + [
        (
            v.scenario,
            str(v.jobs),
            str(v.lost),
            f"{v.duplicates}/{v.allowed_duplicates}",
            str(v.dead),
            "-" if v.recovery_s is None else f"{v.recovery_s:.2f}",
            "ok" if v.ok else "FAIL",
        )
        for v in verdicts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    registry = load_all()
    if args.command == "list":
        for sc in registry.values():
            print(f"{sc.name:20} {sc.description}")
        return 0
    unknown = [n for n in args.scenarios if n not in registry]
    if unknown:
        print(
            f"chaos: error: unknown scenario {unknown[0]!r} (see python -m chaos list)",
            file=sys.stderr,
        )
        return 2
    if args.duration is not None and args.duration <= 0:
        print("chaos: error: --duration must be > 0", file=sys.stderr)
        return 2
    opts = Options(duration_s=args.duration, short=args.short)
    verdicts = []
    for name in args.scenarios or list(registry):
        verdict = run_scenario(registry[name], opts)
        verdicts.append(verdict)
        status = "ok" if verdict.ok else "FAIL: " + "; ".join(verdict.problems)
        print(f"{name}: {status}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([v.as_json() for v in verdicts], indent=2))
    else:
        print(table(verdicts))
    return 0 if all(v.ok for v in verdicts) else 1


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit``, so a stopped run tears its stack down (the
    harness's context managers stop the actors, proxies and Redis) instead of leaving
    them orphaned, as the default SIGTERM action did."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    _exit_on_sigterm()
    sys.exit(main())
