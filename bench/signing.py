"""What payload signing costs: per envelope, on enqueue, and on a worker's drain.

    .venv/bin/python -m bench.signing [--runs 5] [--single 3000] [--bulk 10000] [--jobs 20000]

Each figure is a ratio against unsigned in the same run (modes interleaved run by run,
medians of ``--runs``): HMAC-SHA256 and Ed25519 (the ``signing`` extra).

1. CPU per envelope: ``Signer.sign`` and ``Signer.verify`` of a typical small envelope.
2. Enqueue: ``app.enqueue`` one job per round trip, and ``enqueue_many`` of ``--bulk``.
3. Drain: no-op async jobs drained by one ``stem worker --burst`` (as ``bench.worker``
   measures it), the worker verifying each job before it decodes it.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import private_redis, rate, table
from bench.worker import drain
from stem import Stem
from stem.envelope import encode_fields
from stem.signing import Signer

HMAC_SECRET = os.urandom(32)
ED_PRIVATE = Ed25519PrivateKey.generate()
#: STEM_SIGNING_KEYS per mode (the bench's producers and its workers read it).
MODES = {
    "unsigned": None,
    "hmac-sha256": "b1:" + base64.b64encode(HMAC_SECRET).decode(),
    "ed25519": "b2:ed25519:" + base64.b64encode(ED_PRIVATE.private_bytes_raw()).decode(),
}


def use(mode: str) -> None:
    """Point this process (and the workers it starts) at ``mode``'s keys."""
    os.environ.pop("STEM_SIGNING_KEYS", None)
    spec = MODES[mode]
    if spec is not None:
        os.environ["STEM_SIGNING_KEYS"] = spec


def per_envelope(n: int = 20_000) -> list[tuple[str, str, str]]:
    """(mode, µs to sign, µs to verify) for one typical envelope."""
    body = encode_fields("0190f0a1b2c3d4e5f6a7b8c9d0", "myapp.jobs.send_email",
        ["someone@example.com", {"template": "welcome", "lang": "en"}], {}, "default",
        0, 1_700_000_000_000, 0, {})  # fmt: skip
    rows = []
    for mode, key in (("hmac-sha256", HMAC_SECRET), ("ed25519", ED_PRIVATE)):
        sign_us, verify_us = _costs(Signer({"b": key}, "b"), body, n)
        rows.append((mode, f"{sign_us:.1f} µs", f"{verify_us:.1f} µs"))
    return rows


def _costs(signer: Signer, body: str, n: int) -> tuple[float, float]:
    """µs per ``sign`` and per ``verify`` of ``body``."""
    raw = signer.sign("j", "default", body).encode()
    sign_us = 1e6 / rate(n, lambda: [signer.sign("j", "default", body) for _ in range(n)])
    verify_us = 1e6 / rate(n, lambda: [signer.verify("j", "default", raw) for _ in range(n)])
    return sign_us, verify_us


def interleaved(runs: int, measure: Callable[[str], float]) -> dict[str, float]:
    """Median per mode of ``measure(mode)``, the modes taking turns run by run."""
    got: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(runs):
        for mode in MODES:
            use(mode)
            got[mode].append(measure(mode))
    use("unsigned")
    return {m: statistics.median(v) for m, v in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    print(table(per_envelope(), ("signature", "sign", "verify")))
    with private_redis() as server:

        def single(mode: str) -> float:
            app = Stem(server.url, namespace=f"s{time.monotonic_ns()}")
            app.enqueue("bench.noop_async")  # warm up: scripts, connection
            try:
                n = args.single
                return rate(n, lambda: [app.enqueue("bench.noop_async") for _ in range(n)])
            finally:
                app.close()

        def bulk(mode: str) -> float:
            app = Stem(server.url, namespace=f"b{time.monotonic_ns()}")
            app.enqueue("bench.noop_async")
            try:
                calls = [(i,) for i in range(args.bulk)]
                return rate(args.bulk, lambda: app.enqueue_many("bench.noop_async", calls))
            finally:
                app.close()

        def drained(mode: str) -> float:
            opts = ["--concurrency", "50", "--prefetch", "500"]
            return drain(server.url, "bench.noop_async", args.jobs, 1, opts)[0]

        results = {
            "enqueue, one job per call": interleaved(args.runs, single),
            f"enqueue_many of {args.bulk:,}": interleaved(args.runs, bulk),
            f"drain {args.jobs:,} no-op async, 1 worker": interleaved(args.runs, drained),
        }
    rows = []
    for case, by_mode in results.items():
        base = by_mode["unsigned"]
        rows.append((case, *(f"{v:,.0f}/s ({v / base:.2f}x)" for v in by_mode.values())))
    print(f"\nredis: {server.binary}; medians of {args.runs} interleaved runs")
    print(table(rows, ("case", *MODES)))


if __name__ == "__main__":
    main()
