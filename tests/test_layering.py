"""The layout rules, checked by reading imports (ast), so the next leak fails a test.

* Only the broker knows Redis: only ``stem/broker/`` imports ``redis`` or spells Lua.
* Each of stem's units (a top-level module or a subpackage) imports only the units
  :data:`ALLOWED` lists for it. The table is the architecture drawn as data: the pure
  schedule model sits below the app, the actors above it, the CLI on top, and
  ``supervisor`` beside stem, importing nothing from it.
* Outside the broker, stem reaches the broker only through its interface
  (``stem.broker``) and its name rules (``stem.broker.keys``).
* Module-level rules with known leaks are listed as explicit, commented exceptions
  (``TODO(structure)``): fixing a leak means deleting its line here.

Every import counts, including ``TYPE_CHECKING`` and function-level ones: a lazy import
is still a dependency, it only moves the failure to run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEM = ROOT / "stem"

#: unit -> the units it may import. A unit is ``stem.<top-level module or package>``
#: (or ``supervisor``); imports inside one unit are free.
ALLOWED: dict[str, set[str]] = {
    # Leaves: nothing from stem.
    "supervisor": set(),
    "stem.errors": set(),
    "stem.states": set(),
    "stem.context": set(),
    "stem._async": set(),
    # What processing decided for a job: shared by middleware, retry policy and broker.
    "stem.outcome": {"stem.states"},
    # The pure models and codecs: errors only.
    "stem.schedule": {"stem.errors"},
    "stem.envelope": {"stem.errors"},
    # Payload signing: signs and verifies envelope bytes; no Redis, no app.
    "stem.signing": {"stem.errors"},
    # The embedded Redis arms the supervisor's parent-death signal (a generic leaf).
    "stem.embedded": {"stem.errors", "supervisor"},
    # The broker: below the app; knows nothing of workers, beat, CLI or the app.
    "stem.broker": {"stem.errors", "stem.outcome", "stem.states"},
    # The app and the producer side (app, task and handle refer to each other).
    "stem.app": {
        "stem._async",
        "stem.broker",
        "stem.config",
        "stem.envelope",
        "stem.errors",
        "stem.handle",
        "stem.limits",
        "stem.middleware",
        "stem.observe",
        "stem.schedule",
        "stem.signing",
        "stem.task",
    },
    "stem.task": {
        "stem.app",
        "stem.errors",
        "stem.handle",
        "stem.limits",
        "stem.outcome",
        "stem.states",
    },
    # The limits model: definitions (a broker record) and key templates.
    "stem.limits": {"stem.broker", "stem.errors"},
    "stem.handle": {"stem._async", "stem.app", "stem.broker", "stem.errors", "stem.states"},
    "stem.config": {"stem.app", "stem.errors"},
    "stem.middleware": {"stem.context", "stem.outcome", "stem.task"},
    # Actor plumbing, then the actors: above the app.
    # Heartbeats, logs, the job-event and tracing middleware (the app installs tracing,
    # so observe sits beside the app: it may not import the app, only name the broker's
    # Admin role for the Prometheus exposition).
    "stem.observe": {
        "stem.broker",
        "stem.context",
        "stem.errors",
        "stem.middleware",
        "stem.outcome",
        "supervisor",
    },
    "stem.runtime": {"stem.app", "stem.broker", "stem.config", "stem.errors", "stem.observe"},
    "stem.worker": {
        "stem.app",
        "stem.broker",
        "stem.config",
        "stem.context",
        "stem.delays",
        "stem.envelope",
        "stem.errors",
        "stem.limits",
        "stem.middleware",
        "stem.observe",
        "stem.outcome",
        "stem.runtime",
        "stem.signing",
        "stem.states",
        "stem.task",
        "supervisor",
    },
    # Promotion of due delayed jobs, shared by the worker and the reclaimer.
    "stem.delays": {"stem.broker", "stem.errors"},
    "stem.reclaimer": {
        "stem.app",
        "stem.broker",
        "stem.delays",
        "stem.errors",
        "stem.observe",
        "stem.runtime",
    },
    "stem.beat": {
        "stem.app",
        "stem.broker",
        "stem.errors",
        "stem.handle",
        "stem.observe",
        "stem.runtime",
        "stem.schedule",
    },
    "stem.ratelimit": {
        "stem.app",
        "stem.broker",
        "stem.errors",
        "stem.limits",
        "stem.observe",
        "stem.runtime",
    },
    # --metrics-port: loads the app (lease, broker) and serves the observe collector.
    "stem.supervise": {"stem.config", "stem.embedded", "stem.errors", "stem.observe", "supervisor"},
    # The edge: the CLI may use everything below it (actors are imported by name, at run
    # time, through cli.actors.actor_module, so they do not show up here).
    "stem.cli": {
        "stem.app",
        "stem.beat",
        "stem.broker",
        "stem.config",
        "stem.errors",
        "stem.handle",
        "stem.observe",  # observe scaling/serve, and the log options
        "stem.limits",
        "stem.schedule",
        "stem.signing",
        "stem.states",
        "supervisor",
    },
    "stem": {
        "stem.app",
        "stem.context",
        "stem.errors",
        "stem.handle",
        "stem.middleware",
        "stem.states",
        "stem.task",
    },
    "stem.__main__": {"stem.cli"},
}

#: The broker's public doors: everything else in stem/broker/ is its inside.
BROKER_INTERFACE = {"stem.broker", "stem.broker.keys"}

#: Modules that only their own package's named modules may import.
PRIVATE_MODULES: dict[str, set[str]] = {
    # The process pool is one runner among three; the worker picks it in pools.py.
    "stem.worker.process_pool": {"stem.worker.pools"},
}

#: (importer, imported): known leaks, each to be fixed by deleting its line.
MODULE_EXCEPTIONS: set[tuple[str, str]] = set()

#: (module, literal): known places that spell the supervisor's environment variables
#: instead of using supervisor.CHILD_NAME_ENV / REPLICA_ENV / HEARTBEAT_FILE_ENV.
ENV_LITERAL_EXCEPTIONS: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "supervisor":
        return "supervisor"
    if parts[0] != "stem":
        return None
    return "stem" if len(parts) == 1 else f"stem.{parts[1]}"


def _imported(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # ``from stem.broker import keys`` imports the module stem.broker.keys.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _sources() -> list[Path]:
    return sorted([*STEM.rglob("*.py"), *(ROOT / "supervisor").rglob("*.py")])


def _edges() -> set[tuple[str, str]]:
    """(importing module, imported stem or supervisor module) for every import."""
    edges = set()
    for path in _sources():
        importer = _module_name(path)
        for name in _imported(path):
            if _unit(name) is not None:
                edges.add((importer, name))
    return edges


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT / relative).with_suffix(".py").exists() or (ROOT / relative).is_dir()


def test_only_the_broker_package_imports_redis() -> None:
    offenders = [
        str(path.relative_to(STEM))
        for path in STEM.rglob("*.py")
        if any(name.split(".")[0] == "redis" for name in _imported(path))
        and "broker" not in path.relative_to(STEM).parts[:1]
    ]
    assert offenders == []


def test_lua_lives_in_lua_files_only() -> None:
    offenders = [
        str(path.relative_to(STEM))
        for path in STEM.rglob("*.py")
        if "redis.call(" in path.read_text()
    ]
    assert offenders == []


def test_every_unit_of_stem_has_a_row_in_the_allowed_imports_table() -> None:
    units = {str(_unit(_module_name(path))) for path in _sources()}
    assert sorted(u for u in units if u not in ALLOWED) == []


def test_each_unit_imports_only_the_units_the_table_allows() -> None:
    leaks = sorted(
        f"{importer} imports {name}"
        for importer, name in _edges()
        if (src := _unit(importer)) != (dst := _unit(name))
        and dst not in ALLOWED.get(str(src), set())
    )
    assert leaks == []


def test_the_table_keeps_the_rules_of_the_design() -> None:
    # The pure schedule model and the generic supervisor stay leaves; nothing imports
    # the CLI; the broker knows nothing above it.
    assert ALLOWED["stem.schedule"] == {"stem.errors"}
    assert ALLOWED["supervisor"] == set()
    assert not {"stem.worker", "stem.beat", "stem.cli", "stem.app"} & ALLOWED["stem.broker"]
    assert "stem.cli" not in set().union(*(v for k, v in ALLOWED.items() if k != "stem.__main__"))


def test_outside_the_broker_only_its_interface_is_imported() -> None:
    leaks = sorted(
        f"{importer} imports {name}"
        for importer, name in _edges()
        if _unit(name) == "stem.broker"
        and _unit(importer) != "stem.broker"
        and _is_module(name)
        and name not in BROKER_INTERFACE
        and (importer, name) not in MODULE_EXCEPTIONS
    )
    assert leaks == []


def test_private_modules_are_imported_only_by_their_named_neighbours() -> None:
    leaks = sorted(
        f"{importer} imports {name}"
        for importer, name in _edges()
        if name in PRIVATE_MODULES
        and importer not in PRIVATE_MODULES[name]
        and (importer, name) not in MODULE_EXCEPTIONS
    )
    assert leaks == []


def test_stem_uses_the_supervisors_names_for_its_environment_variables() -> None:
    spelled = set()
    for path in STEM.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            literal = node.value if isinstance(node, ast.Constant) else None
            if isinstance(literal, str) and literal.startswith("SUPERVISOR_"):
                spelled.add((_module_name(path), literal))
    assert sorted(spelled - ENV_LITERAL_EXCEPTIONS) == []


def test_every_listed_exception_is_still_a_real_leak() -> None:
    edges = _edges()
    stale = sorted(f"{a} -> {b}" for a, b in MODULE_EXCEPTIONS if (a, b) not in edges)
    stale += sorted(
        f"{module} spells {literal}"
        for module, literal in ENV_LITERAL_EXCEPTIONS
        if literal not in (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
    )
    assert stale == [], "a leak was fixed: delete its line from the exceptions"


def test_the_chaos_proxy_imports_nothing_from_stem() -> None:
    # It stands in for an outside Go binary: stem under test must not shape it.
    chaos = STEM.parent / "chaos" / "proxy"  # the scenarios around it do use stem
    offenders = [
        str(path.relative_to(chaos))
        for path in chaos.rglob("*.py")
        if {name.split(".")[0] for name in _imported(path)} & {"stem", "supervisor", "redis"}
    ]
    assert offenders == []
