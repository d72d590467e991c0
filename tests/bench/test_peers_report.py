"""The pure parts of ``bench.peers``: medians and spread, the run order, the table, the
pinned requirements and the docs section. No peer is installed or run here."""

from __future__ import annotations

import ast

import pytest

from bench.peers.harness import unavailable
from bench.peers.report import (
    Result,
    Spread,
    cell,
    markdown_table,
    pinned_requirements,
    replace_section,
    shuffled_orders,
    spread,
)
from bench.peers.systems import ROOT, SYSTEMS, System, by_name

PEER_SIDE = ROOT / "bench" / "peers"


def test_a_cell_shows_the_median_and_the_min_max_spread_over_reps() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == Spread(2.5, 1.0, 10.0)
    assert cell([1_000.0, 3_000.0, 1_500.0]) == "1,500/s (1,000-3,000)"
    assert cell([12.34], " MiB", 1) == "12.3 MiB"
    assert cell([]) == "-"


def test_each_rep_runs_every_system_once_in_an_order_of_its_own() -> None:
    names = [s.name for s in SYSTEMS]
    orders = shuffled_orders(names, 5, seed=7)
    assert len(orders) == 5
    assert all(sorted(order) == sorted(names) for order in orders)
    assert len({tuple(order) for order in orders}) > 1
    assert shuffled_orders(names, 5, seed=7) == orders


def test_the_table_has_a_row_per_system_and_a_failed_one_says_why_in_one_cell() -> None:
    ok = Result("stem", "0.1.0")
    for drain1, drain2 in ((1_000.0, 1_800.0), (1_200.0, 2_000.0), (1_100.0, 1_900.0)):
        ok.add("drain1", drain1)
        ok.add("drain2", drain2)
    for metric, value in (("single", 3_000.0), ("bulk", 50_000.0), ("rss_mib", 44.0)):
        ok.add(metric, value)
    ok.add("p50_ms", 1.5)
    ok.add("p99_ms", 4.0)
    no_bulk = Result("Huey", "3.5", {"drain1": [250.0], "p50_ms": [1.0], "p99_ms": [2.0]})
    no_bulk.bulk_note = "n/a (no bulk API)"
    broken = Result("RQ", error="not installed: pip install failed: no | such")

    lines = markdown_table([ok, no_bulk, broken], rate=200).splitlines()

    assert lines[0].startswith("| system | version | drain, 1 process |")
    assert "latency p50 / p99 at 200/s" in lines[0]
    assert lines[2] == (
        "| stem | 0.1.0 | 1,100/s (1,000-1,200) | 1,900/s (1,800-2,000) (1.73x) "
        "| 3,000/s | 50,000/s | 1.5 / 4.0 ms | 44.0 MiB |"
    )
    assert "| n/a (no bulk API) |" in lines[3]
    assert "saturated" not in lines[3]
    assert lines[4] == "| RQ | - | not installed: pip install failed: no / such |  |  |  |  |  |"
    assert len(lines) == 5


def test_latency_says_saturated_when_one_process_drains_slower_than_the_rate() -> None:
    slow = Result("RQ", "3.0", {"drain1": [33.0, 40.0]})
    assert "| saturated (1 process drains < 200/s) |" in markdown_table([slow], rate=200)
    mixed = Result("X", "1", {"drain1": [150.0, 300.0], "p50_ms": [2.0], "p99_ms": [9.0]})
    assert "| 2.0 / 9.0 ms; saturated in 1 rep(s) |" in markdown_table([mixed], rate=200)


def test_every_peer_has_a_requirements_file_with_every_line_pinned() -> None:
    peers = [s for s in SYSTEMS if s.requirements is not None]
    assert len(peers) == 8
    for system in peers:
        assert system.requirements is not None
        pins = dict(pinned_requirements(system.requirements.read_text()))
        assert system.dist in pins, f"{system.requirements.name} does not pin {system.dist}"
        assert "stem-jobs" not in pins


def test_a_requirement_without_an_exact_pin_is_refused() -> None:
    assert pinned_requirements("# c\ncelery[redis]==5.7.0\n\nredis==8.1.0  # why\n") == [
        ("celery", "5.7.0"),
        ("redis", "8.1.0"),
    ]
    with pytest.raises(ValueError, match="not pinned"):
        pinned_requirements("celery>=5\n")


def test_a_system_without_a_bulk_figure_has_a_producer_without_send_many() -> None:
    for system in SYSTEMS:
        tree = ast.parse((PEER_SIDE / "apps" / f"{system.app}.py").read_text())
        no_send_many = any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "send_many" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and node.value.value is None
            for node in ast.walk(tree)
        )
        assert no_send_many == (system.no_bulk is not None), system.name


def test_nothing_imported_inside_a_peer_environment_imports_stem() -> None:
    peer_side = [PEER_SIDE / "job.py", PEER_SIDE / "driver.py", PEER_SIDE / "__init__.py"]
    peer_side += [p for p in (PEER_SIDE / "apps").glob("*.py") if p.name != "stem_app.py"]
    for path in peer_side:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] == "stem" or n == "bench.common"]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_peers_section_is_replaced_and_the_other_sections_are_kept() -> None:
    doc = "# Performance\n\n## Latency\n\nmine\n\n## Peers\n\nold table\n\n## Memory\n\nm\n"
    new = replace_section(doc, "## Peers", "new table", "Performance")
    assert new == "# Performance\n\n## Latency\n\nmine\n\n## Peers\n\nnew table\n\n## Memory\n\nm\n"
    assert replace_section(new, "## Peers", "new table", "Performance") == new


def test_a_missing_doc_gets_a_title_and_a_missing_section_is_appended() -> None:
    assert replace_section("", "## Peers", "t", "Performance") == "# Performance\n\n## Peers\n\nt\n"
    doc = "# Performance\n\n## Latency\n\nmine\n"
    assert replace_section(doc, "## Peers", "t", "Performance") == doc + "\n## Peers\n\nt\n"


def test_systems_are_chosen_by_name_or_key_and_an_unknown_one_is_refused() -> None:
    assert [s.name for s in by_name(["stem", "TASKIQ", "taskiq-redis"])] == [
        "stem",
        "taskiq-redis",
    ]
    assert len(by_name(None)) == len(SYSTEMS)
    with pytest.raises(ValueError, match="unknown system"):
        by_name(["sidekiq"])


def test_a_worker_command_for_two_processes_starts_two_or_asks_its_cli_for_two() -> None:
    for system in SYSTEMS:
        one, two = system.worker(1, "redis://x"), system.worker(2, "redis://x")
        assert len(one) == 1
        assert len(two) == 2 or (len(two) == 1 and "2" in two[0]), system.name


def test_a_peer_without_its_environment_is_reported_as_not_installed_with_the_fix() -> None:
    missing = System("Nope", "nope-not-installed", "minimal", "nope", lambda _n, _u: [])
    assert unavailable(missing) == (
        "not installed: run `python -m bench.peers setup nope-not-installed`"
    )
    assert unavailable(by_name(["stem"])[0]) is None
