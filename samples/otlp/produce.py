"""``python -m samples.otlp.produce [N]``: place N orders (default 5) and wait for each.

The producer's side of samples/otlp: each enqueue opens a ``send default`` span whose
trace the worker continues (run with the same ``OTEL_*`` and ``STEM_*`` variables as
the worker; samples/otlp/README.md).
"""

from __future__ import annotations

import sys

from samples.otlp.app import place_order


def main(argv: list[str]) -> int:
    """Place the orders, then print each one's result on stderr as it settles."""
    count = int(argv[0]) if argv else 5
    handles = [place_order.enqueue(i, 10.0 * (i + 1)) for i in range(count)]
    for handle in handles:
        print(f"order job {handle.id}: {handle.result(timeout_s=60)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
