"""The Lua scripts of the broker, loaded from ``lua/*.lua`` beside this module.

Each script is registered as a redis-py ``Script`` (EVALSHA, reloading itself after a
``NOSCRIPT`` reply, e.g. after a Redis restart or ``SCRIPT FLUSH``). ``lib.lua`` holds
helpers that are prepended to every script, so each file stays self-contained on the
server while the helpers are written once.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

NAMES: tuple[str, ...] = ("enqueue", "fetch", "complete", "retry", "bury", "release")
NAMES += ("renew", "promote", "reclaim", "replay", "deliver", "prune")
NAMES += ("schedule_run",)


@cache
def source(name: str) -> str:
    """The full source of script ``name`` as sent to Redis (lib.lua + the script)."""
    folder = resources.files("stem.broker") / "lua"
    lib = (folder / "lib.lua").read_text()
    return lib + "\n" + (folder / f"{name}.lua").read_text()


class Scripts:
    """All broker scripts bound to one client (scripts are per connection pool)."""

    def __init__(self, client: redis.Redis) -> None:
        self.enqueue = self._load(client, "enqueue")
        self.fetch = self._load(client, "fetch")
        self.complete = self._load(client, "complete")
        self.retry = self._load(client, "retry")
        self.bury = self._load(client, "bury")
        self.release = self._load(client, "release")
        self.renew = self._load(client, "renew")
        self.promote = self._load(client, "promote")
        self.reclaim = self._load(client, "reclaim")
        self.replay = self._load(client, "replay")
        self.deliver = self._load(client, "deliver")
        self.prune = self._load(client, "prune")
        self.schedule_run = self._load(client, "schedule_run")

    @staticmethod
    def _load(client: redis.Redis, name: str) -> Script:
        return client.register_script(source(name))


class ScriptBatch:
    """Many script calls in one pipelined round trip, without redis-py's per-execute
    ``SCRIPT EXISTS`` check: calls go out as ``EVALSHA``, and only a call answered with
    ``NOSCRIPT`` (the server lost its script cache) is re-run through its ``Script``,
    which loads it. A call that got NOSCRIPT did not run, so re-running it is safe.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._calls: list[tuple[Script, list[Any], list[Any]]] = []

    def add(self, script: Script, keys: list[Any], args: list[Any]) -> None:
        """Queue one call."""
        self._calls.append((script, keys, args))

    def execute(self) -> list[Any]:
        """Send every queued call; return the replies in order; raise the first error."""
        replies = self.execute_each()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def execute_each(self) -> list[Any]:
        """Send every queued call; return the replies in order, an error in the place of
        each call that Redis refused (the calls around it did run: this is no transaction).
        A lost connection still raises, since which calls ran is then unknown."""
        with self._client.pipeline(transaction=False) as pipe:
            for script, keys, args in self._calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            replies: list[Any] = pipe.execute(raise_on_error=False)
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                script, keys, args = self._calls[i]
                try:
                    replies[i] = script(keys=keys, args=args)
                except redis.ResponseError as exc:
                    replies[i] = exc
        self._calls.clear()
        return replies
