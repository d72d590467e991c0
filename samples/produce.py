"""Enqueue a few jobs on the quick-start app and print their results.

python -m samples.produce        # needs a running `stem supervise` (or STEM_REDIS_URL)
"""

from __future__ import annotations

import sys

import stem
from samples.quickstart import add, checksum, fetch_report


def main() -> int:
    handles = [
        add.enqueue(2, 3),
        fetch_report.enqueue(42),
        checksum.enqueue("stem", rounds=1000),
    ]
    handles += add.enqueue_many([(i, i) for i in range(10)])
    try:
        for handle in handles:
            print(f"{handle.id}  {handle.result(timeout_s=60)!r}")
    except stem.StemError as exc:
        print(f"produce: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
