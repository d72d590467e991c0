"""The tasks the compatibility fixtures were written with (their names are in the data).

Keep every name and signature: ``v1.json`` holds jobs of ``tests.compat.tasks.add`` and
friends, and today's worker must still run them. Tests point the app at their namespace
with ``app.connect(url, namespace=...)``.
"""

from __future__ import annotations

from stem import RetryPolicy, Stem

app = Stem(retry=RetryPolicy(max_retries=0))


@app.task
def add(a: int, b: int) -> int:
    """A sync task with positional arguments."""
    return a + b


@app.task(queue="other")
async def greet(name: str, *, punctuation: str = "!") -> str:
    """An async task on another queue, with a keyword argument."""
    return f"hello, {name}{punctuation}"


@app.task
def explode(reason: str) -> None:
    """Always fails: with no retries its jobs go to the dead-letter queue."""
    raise ValueError(reason)
