"""The scenario registry and the runner that judges each scenario.

A :class:`Scenario` has a name, one line on what it does, one on what it proves, and a
body ``(stack, opts, verdict) -> None`` that starts actors, injects its fault and fills
the verdict (jobs, duplicates budget, recovery time) with the helpers in
:mod:`chaos.scenarios.flow`. :func:`run_scenario` brings up a fresh stack for it, runs it
and adds the checks that need the stack gone (processes left behind).
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from chaos.checker import Verdict, check_processes
from chaos.stack import Stack, open_stack


@dataclass(frozen=True)
class Options:
    """How long to hold the fault (None: the scenario's own) and whether to run short."""

    duration_s: float | None = None
    short: bool = False
    toxiproxy_url: str | None = None

    def hold(self, full_s: float, short_s: float) -> float:
        """The fault's duration: ``--duration``, else the scenario's for this mode."""
        if self.duration_s is not None:
            return self.duration_s
        return short_s if self.short else full_s

    def load(self, full: int, short: int) -> int:
        return short if self.short else full


Body = Callable[[Stack, Options, Verdict], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    proves: str
    body: Body
    appendonly: bool = False
    lease_s: float = 12.0
    appendfsync: str = "everysec"


REGISTRY: dict[str, Scenario] = {}
#: Scenario modules, in the order their scenarios are listed and run.
FAMILIES = ("network", "processes", "actors", "data")


def scenario(
    name: str,
    description: str,
    proves: str,
    *,
    appendonly: bool = False,
    lease_s: float = 12.0,
    appendfsync: str = "everysec",
) -> Callable[[Body], Body]:
    """Register the decorated body under ``name``."""

    def register(body: Body) -> Body:
        if name in REGISTRY:
            raise ValueError(f"scenario {name!r} is registered twice")
        REGISTRY[name] = Scenario(name, description, proves, body, appendonly, lease_s, appendfsync)
        return body

    return register


def run_scenario(sc: Scenario, opts: Options) -> Verdict:
    """Run one scenario on a fresh stack; never raises for a failure of stem."""
    verdict = Verdict(sc.name)
    try:
        with open_stack(
            sc.name,
            appendonly=sc.appendonly,
            appendfsync=sc.appendfsync,
            lease_s=sc.lease_s,
            toxiproxy_url=opts.toxiproxy_url,
        ) as stack:
            try:
                sc.body(stack, opts, verdict)
            except Exception as exc:
                verdict.problems.append(f"scenario stopped: {type(exc).__name__}: {exc}")
                verdict.notes.append(traceback.format_exc())
                verdict.notes.extend(_tails(stack))
    except Exception as exc:  # the stack itself failed (teardown, Redis)
        verdict.problems.append(f"stack failed: {type(exc).__name__}: {exc}")
        return verdict
    check_processes(stack, verdict)
    return verdict


def _tails(stack: Stack) -> list[str]:
    return [f"--- {a.name} log (tail)\n{a.log()[-2000:]}" for a in stack.actors]


def load_all() -> dict[str, Scenario]:
    """Import every scenario family (each registers itself) and return the registry."""
    for family in FAMILIES:
        importlib.import_module(f"chaos.scenarios.{family}")
    return REGISTRY
