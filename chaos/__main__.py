"""``python -m chaos run|list``: run chaos scenarios and print what each proved.

::

    python -m chaos list
    python -m chaos run                          # every scenario, full mode
    python -m chaos run latency-50ms reset-peer --short
    python -m chaos run --duration 20 --json
    python -m chaos soak --duration 1h --fault-every 120 --rate 50 --out /tmp/soak

Exit codes: 0 every scenario held its invariants (soak: and memory stayed flat), 1 one
did not (a loss, an unexplained duplicate, a process left behind, a leak...), 2 bad
arguments (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from chaos.checker import Verdict
from chaos.scenarios import Options, load_all, run_scenario
from chaos.soak import SoakOptions, SoakResult, run_soak

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
    soak = sub.add_parser("soak", help="steady load with periodic faults; memory must stay flat")
    soak.add_argument("--duration", type=_seconds, default=3600.0, metavar="T", help="1h, 25m, 90s")
    soak.add_argument("--fault-every", type=_seconds, default=120.0, metavar="T")
    soak.add_argument("--rate", type=float, default=50.0, metavar="N", help="jobs per second")
    soak.add_argument("--sample-every", type=_seconds, default=5.0, metavar="T")
    soak.add_argument("--out", type=Path, default=Path("soak-out"), metavar="DIR")
    soak.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return p


def _seconds(text: str) -> float:
    """``1h``, ``25m``, ``90s`` or plain seconds; > 0."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    scale = units.get(text[-1:].lower(), 1.0)
    number = text[:-1] if text[-1:].lower() in units else text
    try:
        value = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (like 1h, 25m, 90s)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


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
    if args.command == "soak":
        return soak(args)
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


def soak(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        print("chaos: error: --rate must be > 0", file=sys.stderr)
        return 2
    opts = SoakOptions(args.duration, args.fault_every, args.rate, args.sample_every, args.out)
    print(f"soak: {opts.duration_s:.0f} s, writing to {opts.out}", file=sys.stderr, flush=True)
    result = run_soak(opts)
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(soak_table(result))
    if result.png_path is None:
        print(
            "soak: no plot made (matplotlib is not installed: pip install 'stem-jobs[soak]')",
            file=sys.stderr,
        )
    return 0 if result.ok else 1


def soak_table(result: SoakResult) -> str:
    """The summary: the checker's figures, then one row per memory slope."""
    v = result.verdict
    faults = ", ".join(f"{n} x{c}" for n, c in result.faults.items()) or "none"
    lines = [
        f"duration      {result.duration_s:.0f} s, {result.samples} samples",
        f"jobs          {v.jobs} accepted, {result.settled} settled, {v.lost} lost, "
        f"{v.dead} dead, {v.refused} refused ({v.written_despite_error} written anyway)",
        f"duplicates    {v.duplicates}/{v.allowed_duplicates} allowed",
        f"throughput    {result.throughput_per_s:.1f} jobs/s",
        f"latency       p50 {_ms(result.latency_p50_ms)}, p99 {_ms(result.latency_p99_ms)}"
        " (enqueue to settled)",
        f"faults        {faults}",
        "",
    ]
    rows = [("series", "slope MB/h", "limit", "samples", "verdict")] + [
        (
            s.series,
            "-" if s.mb_per_h is None else f"{s.mb_per_h:+.2f}",
            f"{s.limit_mb_per_h:g}",
            str(s.samples),
            ("ok" if s.ok else "FAIL") if s.judged else "not judged (run too short)",
        )
        for s in result.slopes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines += ["", *(f"problem: {p}" for p in v.problems)]
    lines += [f"csv: {result.csv_path}", f"png: {result.png_path or '-'}"]
    lines.append(f"verdict: {'PASS' if result.ok else 'FAIL'}")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


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
