"""Errors at the edge: one ``stem: error:`` line, a documented exit code, no traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stem.embedded import free_port
from tests.cli.conftest import Invoke, one_error_line


def _unreachable() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_unreachable_redis_exits_3_with_one_line(bare: Invoke) -> None:
    url = _unreachable()
    result = bare("--redis-url", url, "enqueue", "t")
    assert result.exit_code == 3
    line = one_error_line(result)
    assert line.startswith(f"stem: error: cannot reach Redis at {url}")


def test_debug_shows_the_traceback_then_the_line(bare: Invoke) -> None:
    result = bare("--debug", "--redis-url", _unreachable(), "observe", "queues")
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert "BrokerUnavailable" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("stem: error: cannot reach Redis")


def test_global_options_may_follow_the_command_name(bare: Invoke) -> None:
    result = bare("observe", "queues", "--redis-url", _unreachable(), "--debug")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr


def test_the_redis_url_comes_from_the_environment(bare: Invoke) -> None:
    url = _unreachable()
    result = bare("dlq", "list", env={"STEM_REDIS_URL": url})
    assert result.exit_code == 3
    assert url in one_error_line(result)


def test_no_redis_url_anywhere_is_a_config_error(
    bare: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.stem/redis.url here
    result = bare("observe", "queues", env={"STEM_REDIS_URL": None})
    assert result.exit_code == 2
    assert "no Redis URL" in one_error_line(result)


def test_the_url_file_of_a_running_supervisor_is_used(
    bare: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _unreachable()
    (tmp_path / ".stem").mkdir()
    (tmp_path / ".stem" / "redis.url").write_text(url + "\n")
    monkeypatch.chdir(tmp_path)
    result = bare("observe", "queues", env={"STEM_REDIS_URL": None})
    assert result.exit_code == 3
    assert url in one_error_line(result)


def test_a_url_that_is_not_redis_is_a_config_error(bare: Invoke) -> None:
    result = bare("--redis-url", "http://example.com", "observe", "queues")
    assert result.exit_code == 2
    assert "invalid Redis URL 'http://example.com'" in one_error_line(result)


def test_an_unknown_option_is_one_line_with_a_help_hint(stem: Invoke) -> None:
    result = stem("enqueue", "t", "--zzz")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "stem: error: No such option '--zzz'; see 'stem enqueue --help'"
    )


def test_a_mistyped_option_names_the_closest_one(stem: Invoke) -> None:
    result = stem("enqueue", "t", "--quee", "high")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "stem: error: No such option '--quee' (did you mean '--queue'?); see 'stem enqueue --help'"
    )


def test_an_unknown_command_is_a_usage_error(stem: Invoke) -> None:
    result = stem("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in one_error_line(result)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["wroker"], "No such command 'wroker' (did you mean 'worker'?); see 'stem --help'"),
        (
            ["worker", "lst"],
            "No such command 'lst' (did you mean 'list'?); see 'stem worker --help'",
        ),
    ],
)
def test_a_mistyped_command_names_the_closest_one_though_commands_load_lazily(
    stem: Invoke, argv: list[str], line: str
) -> None:
    result = stem(*argv)
    assert result.exit_code == 2
    assert one_error_line(result) == f"stem: error: {line}"


def test_a_missing_argument_is_a_usage_error(stem: Invoke) -> None:
    result = stem("result", "get")
    assert result.exit_code == 2
    assert "Missing argument 'ID'" in one_error_line(result)


def test_an_app_that_cannot_be_imported_is_a_config_error(stem: Invoke) -> None:
    result = stem("--app", "no_such_module_here:app", "enqueue", "t")
    assert result.exit_code == 2
    assert "cannot import 'no_such_module_here'" in one_error_line(result)


def test_an_app_spec_without_an_attribute_is_a_config_error(stem: Invoke) -> None:
    result = stem("--app", "tests.apps.jobs", "observe", "queues")
    assert result.exit_code == 2
    assert "expected 'module:attribute'" in one_error_line(result)


def test_the_app_spec_comes_from_the_environment(stem: Invoke) -> None:
    result = stem("observe", "queues", env={"STEM_APP": "tests.apps.jobs:nothing"})
    assert result.exit_code == 2
    assert "is not a stem.Stem app" in one_error_line(result)


def test_no_command_prints_the_help(bare: Invoke) -> None:
    result = bare()
    assert result.exit_code == 2
    assert "Usage: stem" in result.stderr
    assert "Exit codes:" in result.stderr


def test_one_error_wrapped_in_an_exception_group_gets_its_own_exit_code_and_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stem.cli.root import report
    from stem.errors import BrokerUnavailable

    wrapped = ExceptionGroup("from a nursery", [BrokerUnavailable("Redis went away")])
    assert report(BaseExceptionGroup("outer", [wrapped]), debug=False) == 3
    assert capsys.readouterr().err == "stem: error: Redis went away\n"


def test_a_bad_value_names_the_environment_variable_only_when_it_came_from_there(
    stem: Invoke,
) -> None:
    typed = stem("enqueue", "t", "--priority", "10")
    from_env = stem("enqueue", "t", env={"STEM_ENQUEUE_PRIORITY": "10"})
    assert "Invalid value for '--priority': 10 is not" in one_error_line(typed)
    assert "Invalid value for '--priority' (env var: 'STEM_ENQUEUE_PRIORITY'): 10" in (
        one_error_line(from_env)
    )


def test_an_unreachable_redis_names_the_option_it_came_from(bare: Invoke) -> None:
    typed = bare("--redis-url", "redis://127.0.0.1:1", "observe", "queues")
    from_env = bare("observe", "queues", env={"STEM_REDIS_URL": "redis://127.0.0.1:1"})
    assert typed.exit_code == from_env.exit_code == 3
    assert one_error_line(typed).endswith("(from --redis-url)")
    assert one_error_line(from_env).endswith("(from $STEM_REDIS_URL)")


def test_a_stale_url_file_is_named_with_the_supervise_that_wrote_it(
    bare: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / ".stem").mkdir()
    (tmp_path / ".stem" / "redis.url").write_text("redis://127.0.0.1:1\n")
    (tmp_path / ".stem" / "supervise.json").write_text(json.dumps({"supervisor_pid": gone.pid}))
    monkeypatch.chdir(tmp_path)
    result = bare("observe", "queues", env={"STEM_REDIS_URL": None})
    assert result.exit_code == 3
    assert one_error_line(result).endswith(
        "(from ./.stem/redis.url, written by a `stem supervise` that is no longer running)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schedule", "remove", "nosuch"], "no schedule entry named 'nosuch'"),
        (["schedule", "show", "nosuch"], "no schedule entry named 'nosuch'"),
        (["schedule", "disable", "nosuch"], "no schedule entry named 'nosuch'"),
        (["observe", "supervisor", "--data-dir", "{tmp}"], "no supervisor status at"),
        (["result", "get", "nosuch"], "no job nosuch in any queue"),
        (["dlq", "show", "nosuch"], "no dead-letter entry nosuch"),
    ],
)
def test_every_not_found_exits_4_with_one_line(
    stem: Invoke, tmp_path: Path, argv: list[str], message: str
) -> None:
    result = stem(*(arg.format(tmp=tmp_path) for arg in argv))
    assert result.exit_code == 4
    assert message in one_error_line(result)
