"""The systems compared: where each one's environment is and how its worker is started.

Pure data (no processes): the harness and the tests read it. Each peer lives in its own
environment, ``.venv-peers/<key>/``, installed from ``bench/peers/requirements/<key>.txt``
by ``python -m bench.peers setup``; stem and the ceiling run from the repository's
``.venv``. A worker command is a list of argv, one per process started; its first word
is looked up in the environment's ``bin/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = ROOT / ".venv-peers"
REQUIREMENTS_DIR = Path(__file__).resolve().parent / "requirements"

WorkerArgv = Callable[[int, str], list[list[str]]]


@dataclass(frozen=True)
class System:
    """One system under test.

    ``key`` names its environment and requirements file (``None``: the repository's
    ``.venv``); ``app`` its module in ``bench.peers.apps``; ``dist`` the distribution whose
    version the table shows; ``worker(processes, redis_url)`` its worker command lines;
    ``no_bulk`` why it has no bulk figure (``None``: its producer has ``send_many``).
    """

    name: str
    key: str | None
    app: str
    dist: str
    worker: WorkerArgv
    notes: str = ""
    no_bulk: str | None = None  # why the bulk column is empty: the system has no bulk API

    @property
    def env_dir(self) -> Path:
        return ROOT / ".venv" if self.key is None else PEERS_DIR / self.key

    @property
    def requirements(self) -> Path | None:
        return None if self.key is None else REQUIREMENTS_DIR / f"{self.key}.txt"


def _each(argv: list[str]) -> WorkerArgv:
    """A worker CLI without a process count: ``processes`` copies of the command."""
    return lambda processes, _url: [list(argv) for _ in range(processes)]


def _stem(processes: int, url: str) -> list[list[str]]:
    argv = ["python", "-m", "stem", "--redis-url", url, "--namespace", "peers"]
    argv += ["--app", "bench.peers.apps.stem_app:app", "worker", "--log-level", "warning"]
    return [list(argv) for _ in range(processes)]


def _huey(processes: int, _url: str) -> list[list[str]]:
    argv = ["huey_consumer", "bench.peers.apps.huey_app.huey", "--quiet"]
    return [argv if processes == 1 else [*argv, "-k", "process", "-w", str(processes)]]


SYSTEMS: tuple[System, ...] = (
    System(
        "stem",
        None,
        "stem_app",
        "stem-jobs",
        _stem,
        "sync task, pool=threads; one `stem worker` per process",
    ),
    System(
        "Celery",
        "celery",
        "celery_app",
        "celery",
        lambda n, _url: [
            [
                "celery",
                "-A",
                "bench.peers.apps.celery_app",
                "worker",
                "--concurrency",
                str(n),
                "--loglevel",
                "WARNING",
            ]
        ],
        "prefork pool, `--concurrency` processes",
        "n/a (no bulk API: a `group` publishes one by one)",
    ),
    System(
        "RQ",
        "rq",
        "rq_app",
        "rq",
        lambda n, url: [["rq", "worker", "--url", url, "--quiet"] for _ in range(n)],
        "forking worker (a work horse per job); one `rq worker` per process",
    ),
    System(
        "Dramatiq",
        "dramatiq",
        "dramatiq_app",
        "dramatiq",
        lambda n, _url: [["dramatiq", "bench.peers.apps.dramatiq_app", "--processes", str(n)]],
        "8 threads per process",
        "n/a (no bulk API)",
    ),
    System(
        "Huey",
        "huey",
        "huey_app",
        "huey",
        _huey,
        "1 process: 1 worker thread; 2: `-k process -w 2`",
        "n/a (no bulk API)",
    ),
    System(
        "arq",
        "arq",
        "arq_app",
        "arq",
        _each(["arq", "bench.peers.apps.arq_app.WorkerSettings"]),
        "async job; one `arq` per process; logs a line per job (no CLI flag to lower it)",
        "n/a (no bulk API)",
    ),
    System(
        "SAQ",
        "saq",
        "saq_app",
        "saq",
        lambda n, _url: [["saq", "bench.peers.apps.saq_app.settings", "--workers", str(n)]],
        "async job; concurrency 10",
        "n/a (no bulk API: `Queue.map` also waits for results)",
    ),
    System(
        "taskiq-redis",
        "taskiq",
        "taskiq_app",
        "taskiq-redis",
        lambda n, _url: [
            [
                "taskiq",
                "worker",
                "bench.peers.apps.taskiq_app:broker",
                "--workers",
                str(n),
                "--log-level",
                "WARNING",
            ]
        ],
        "RedisStreamBroker; sync task in the thread pool",
        "n/a (no bulk API)",
    ),
    System(
        "streaQ",
        "streaq",
        "streaq_app",
        "streaq",
        lambda n, _url: (
            [["streaq", "run", "bench.peers.apps.streaq_app:worker"]]
            if n == 1
            else [["streaq", "run", "bench.peers.apps.streaq_app:worker", "--workers", str(n)]]
        ),
        "sync task in threads; logs a line per job (no CLI flag to lower it)",
    ),
    System(
        "ceiling",
        None,
        "minimal",
        "redis",
        _each(["python", "-m", "bench.peers.apps.minimal"]),
        "hand-written XREADGROUP COUNT 100 + job + XACK; bare / pipelined XADD",
    ),
)


def by_name(names: list[str] | None) -> list[System]:
    """The systems named (case-insensitive, by name or key), all when ``names`` is empty."""
    if not names:
        return list(SYSTEMS)
    wanted = {n.lower() for n in names}
    chosen = [s for s in SYSTEMS if s.name.lower() in wanted or (s.key or "") in wanted]
    unknown = wanted - {s.name.lower() for s in chosen} - {s.key or "" for s in chosen}
    if unknown:
        known = ", ".join(s.name for s in SYSTEMS)
        raise ValueError(f"unknown system(s) {', '.join(sorted(unknown))} (known: {known})")
    return chosen
