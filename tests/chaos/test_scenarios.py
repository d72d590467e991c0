"""Every chaos scenario in its short mode, against real Redis, actors and Toxiproxy.

The scenarios live in ``chaos/scenarios``; ``python -m chaos run`` runs them at full
length. Each test brings up its own stack (Redis, proxies, actor processes) on the
session's Toxiproxy (``$TOXIPROXY_URL`` or a ``chaos.proxy`` subprocess).
"""

from __future__ import annotations

import pytest

from chaos.scenarios import Options, load_all, run_scenario

SCENARIOS = load_all()


@pytest.mark.chaos
@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_holds_its_invariants_in_short_mode(name: str, toxiproxy_url: str) -> None:
    verdict = run_scenario(SCENARIOS[name], Options(short=True, toxiproxy_url=toxiproxy_url))
    print(verdict.as_json())
    assert verdict.problems == [], "\n".join(verdict.problems + verdict.notes)
