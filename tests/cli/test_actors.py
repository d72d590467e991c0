"""The actor commands hand their options to the actor's ``run`` and exit with its code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import stem.reclaimer
import stem.supervise
import stem.worker
from stem.cli.actors import actor_module
from tests.cli.conftest import Invoke, one_error_line

APP = "tests.apps.jobs:app"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Replace each actor's ``run`` with a recorder that returns exit code 7."""
    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for module in (stem.worker, stem.reclaimer, stem.supervise):

        def record(*args: Any, _name: str = module.__name__, **kwargs: Any) -> int:
            seen.append((_name, args, kwargs))
            return 7

        monkeypatch.setattr(module, "run", record)
    return seen


def test_worker_passes_its_options_and_exits_with_the_code_of_run(
    stem: Invoke, calls: list[Any], namespace: str
) -> None:
    argv = ["worker", "--queues", "high:3,low:1", "--concurrency", "4", "--prefetch", "0"]
    argv += ["--pool", "threads", "--burst", "--name", "w1", "--cpu", "off"]
    result = stem("--app", APP, *argv)
    assert result.exit_code == 7, result.stderr
    [(module, (app, spec), kwargs)] = calls
    assert (module, spec, app.namespace) == ("stem.worker", APP, namespace)
    assert kwargs == {
        "queues": ["high", "low"],
        "weights": (3, 1),
        "concurrency": 4,
        "prefetch": "0",
        "pool": "threads",
        "burst": True,
        "stop_timeout_s": 25.0,
        "name": "w1",
        "cpu": "off",
    }


def test_worker_serves_the_apps_default_queue_by_default(stem: Invoke, calls: list[Any]) -> None:
    stem("worker", "--app", APP)
    [(_, _, kwargs)] = calls
    assert (kwargs["queues"], kwargs["weights"]) == (["default"], None)


def test_worker_without_an_app_is_a_config_error(stem: Invoke, calls: list[Any]) -> None:
    result = stem("worker")
    assert result.exit_code == 2
    assert "stem worker needs the app" in one_error_line(result)
    assert calls == []


def test_worker_with_bad_queue_weights_is_a_config_error(stem: Invoke, calls: list[Any]) -> None:
    result = stem("--app", APP, "worker", "--queues", "a:3,b")
    assert result.exit_code == 2
    assert "give a weight to every queue or to none" in one_error_line(result)
    assert calls == []


def test_reclaim_passes_queues_and_interval(stem: Invoke, calls: list[Any]) -> None:
    result = stem("reclaim", "--queues", "a, b", "--interval-s", "2")
    assert result.exit_code == 7
    [(module, (_app,), kwargs)] = calls
    assert (module, kwargs) == ("stem.reclaimer", {"queues": ["a", "b"], "interval_s": 2.0})


def test_reclaim_refuses_a_bad_queue_name(stem: Invoke, calls: list[Any]) -> None:
    result = stem("reclaim", "--queues", "a b")
    assert result.exit_code == 2
    assert "invalid queue name 'a b'" in one_error_line(result)


def test_supervise_maps_flags_onto_its_options(
    bare: Invoke, calls: list[Any], redis_url: str
) -> None:
    argv = ["supervise", "--app", APP, "--redis-url", redis_url, "--workers", "3"]
    result = bare(*argv, "--no-beat", "--max-rss-mb", "512", "--namespace", "ns1")
    assert result.exit_code == 7, result.stderr
    [(module, (options, url), _)] = calls
    assert (module, url) == ("stem.supervise", redis_url)
    assert (options.app_spec, options.workers, options.beat, options.reclaimer) == (
        APP,
        3,
        False,
        True,
    )
    assert (options.max_rss_mb, options.namespace) == (512.0, "ns1")


def test_supervise_flags_win_over_the_config_file(
    bare: Invoke, calls: list[Any], tmp_path: Path
) -> None:
    config = tmp_path / "stem.toml"
    config.write_text(f'[supervise]\napp_spec = "{APP}"\nworkers = 2\nconcurrency = 20\n')
    result = bare(
        "supervise", "--config", str(config), "--workers", "5", env={"STEM_REDIS_URL": None}
    )
    assert result.exit_code == 7, result.stderr
    [(_, (options, url), _)] = calls
    assert (options.workers, options.concurrency, options.config, url) == (5, 20, str(config), None)


def test_supervise_without_an_app_is_a_config_error(bare: Invoke, calls: list[Any]) -> None:
    result = bare("supervise", env={"STEM_APP": None})
    assert result.exit_code == 2
    assert "stem supervise needs the app" in one_error_line(result)
    assert calls == []


def test_supervise_refuses_an_unknown_key_in_the_config_file(
    bare: Invoke, calls: list[Any], tmp_path: Path
) -> None:
    config = tmp_path / "stem.toml"
    config.write_text("[supervise]\nworkerz = 2\n")
    result = bare("--app", APP, "supervise", "--config", str(config))
    assert result.exit_code == 2
    assert "unknown key(s) in [supervise]: workerz (did you mean 'workers'?)" in (
        one_error_line(result)
    )


def test_supervise_reads_stem_config_as_beat_does_and_env_vars_win_over_the_file(
    bare: Invoke, calls: list[Any], tmp_path: Path
) -> None:
    config = tmp_path / "stem.toml"
    config.write_text(f'[supervise]\napp_spec = "{APP}"\nworkers = 2\nconcurrency = 20\n')
    env = {"STEM_CONFIG": str(config), "STEM_SUPERVISE_CONCURRENCY": "3", "STEM_APP": None}
    result = bare("supervise", env=env)
    assert result.exit_code == 7, result.stderr
    [(_, (options, _), _)] = calls
    # the file's workers, not the flag's default; the env var's concurrency, not the file's
    assert (options.config, options.workers, options.concurrency) == (str(config), 2, 3)


def test_supervise_checks_the_app_before_starting_anything(bare: Invoke, calls: list[Any]) -> None:
    result = bare("supervise", "--app", "tests.apps.jobs:missing")
    assert result.exit_code == 2
    assert "is not a stem.Stem app" in one_error_line(result)
    assert calls == []


def test_an_actor_module_that_is_not_there_is_a_usage_error() -> None:
    import click

    with pytest.raises(click.UsageError, match="not available yet"):
        actor_module("stem.no_such_actor")


def test_log_level_reaches_the_actor_through_stem_log_level(
    stem: Invoke, calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEM_LOG_LEVEL", "WARNING")  # restored after the test
    result = stem("--app", APP, "reclaim", "-l", "debug")
    assert result.exit_code == 7, result.stderr
    assert os.environ["STEM_LOG_LEVEL"] == "DEBUG"
