"""The worker service: the tasks, registered under stable names the web service uses.

    stem --app samples.microservice.tasks:app worker

Explicit ``name=`` values decouple the two services: the web service never imports this
module, so the names (not the module path) are the contract between them.
"""

from __future__ import annotations

import os

from stem import Stem

app = Stem(namespace=os.environ.get("STEM_NAMESPACE", "stem"))


@app.task(name="math.add")
def add(a: int, b: int) -> int:
    """Add two numbers (a stand-in for real work)."""
    return a + b


@app.task(name="text.shout")
async def shout(text: str) -> str:
    """Upper-case ``text`` (an async task)."""
    return text.upper() + "!"
