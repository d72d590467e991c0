"""What every actor process does around its main loop (stem.runtime)."""

from __future__ import annotations

import gc
import logging

import trio

from stem import Stem
from stem.runtime import run_actor


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
