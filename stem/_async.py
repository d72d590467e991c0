"""Run a blocking producer call from trio or asyncio code without blocking the loop."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import sniffio

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` in a worker thread of whichever async library runs us."""
    call = functools.partial(fn, *args, **kwargs)
    if sniffio.current_async_library() == "trio":
        import trio

        return await trio.to_thread.run_sync(call)
    import asyncio

    return await asyncio.to_thread(call)
