"""Every command's ``--help`` works and shows an example; the root documents exit codes."""

from __future__ import annotations

import enum
import importlib
from collections.abc import Iterator

import click
import pytest

from stem.cli import main
from stem.cli.root import LazyGroup
from tests.cli.conftest import Invoke


def _sub(group: click.Group, name: str) -> click.Command:
    """``group``'s command ``name``, loaded (the groups load their commands lazily)."""
    sub = group.get_command(click.Context(group), name)
    assert sub is not None, name
    return sub


def _paths(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            yield from _paths(_sub(command, name), (*path, name))


COMMANDS = list(_paths(main))


def test_the_tree_has_every_command_of_the_design() -> None:
    names = {" ".join(p) for p in COMMANDS}
    expected = {
        "supervise", "worker", "reclaim", "beat", "enqueue", "result get", "result wait",
        "observe queues", "observe workers", "observe metrics", "dlq list", "dlq show",
        "dlq replay", "dlq purge", "schedule list", "ratelimit", "limit list", "limit show",
        "limit set", "limit clear",
    }  # fmt: skip
    assert expected <= names


def _lazy_groups(command: click.Command) -> Iterator[LazyGroup]:
    if isinstance(command, LazyGroup):
        yield command
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            yield from _lazy_groups(_sub(command, name))


def test_the_lazy_maps_short_helps_are_the_commands_own() -> None:
    # `stem --help` lists lazy commands from the map without importing them: the text
    # kept there must be what the command itself would show.
    kept = {
        (group.name, name): (spec, text)
        for group in _lazy_groups(main)
        for name, (spec, text) in group.lazy.items()
    }
    assert {("stem", "worker"), ("stem", "dlq"), ("worker", "stop"), ("observe", "signing")} <= set(
        kept
    )
    for (group, name), (spec, text) in kept.items():
        module, _, attr = spec.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert command.name == name, spec
        assert command.get_short_help_str(limit=1000) == text, (group, name)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "stem")
def test_help_exits_0_and_contains_an_example(bare: Invoke, path: tuple[str, ...]) -> None:
    result = bare(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Example" in result.stdout
    assert result.stderr == ""


def test_the_root_help_lists_the_exit_codes(bare: Invoke) -> None:
    out = bare("--help").stdout
    for line in ("0    ok", "2    usage or config error", "3    Redis unreachable", "130"):
        assert line in out


def test_examples_keep_their_line_breaks(bare: Invoke) -> None:
    out = bare("enqueue", "--help").stdout
    assert "  stem enqueue myapp.jobs.resize --args '[42, 800]'\n" in out


def _options(path: tuple[str, ...]) -> list[click.Option]:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = _sub(command, name)
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "stem")
def test_help_names_the_environment_variable_of_every_option(
    bare: Invoke, path: tuple[str, ...]
) -> None:
    out = " ".join(bare(*path, "--help").stdout.split()).replace("- ", "-")
    prefix = "_".join(["STEM", *(p.upper() for p in path)])
    missing = []
    for option in _options(path):
        if option.name in ("help", "version"):
            continue
        flag = max(option.opts, key=len).lstrip("-").replace("-", "_").upper()
        envvar = option.envvar or f"{prefix}_{flag}"
        if f"env var: {envvar}" not in out:
            missing.append((option.name, envvar))
    assert missing == []


def test_an_option_is_read_from_its_environment_variable(stem: Invoke) -> None:
    result = stem("enqueue", "t", env={"STEM_ENQUEUE_QUEUE": "from-env", "STEM_ENQUEUE_JSON": "1"})
    assert result.exit_code == 0, result.stderr
    assert '"queue": "from-env"' in result.stdout


def test_celery_style_short_flags_are_accepted(bare: Invoke) -> None:
    for path, flags in {
        (): ["-A"],
        ("worker",): ["-Q", "-c", "-l"],
        ("supervise",): ["-Q", "-c", "-l"],
        ("reclaim",): ["-Q", "-l"],
        ("beat",): ["-l"],
    }.items():
        opts = {o for option in _options(path) for o in option.opts}
        assert set(flags) <= opts, path


def test_supervise_shows_the_defaults_of_supervise_options(bare: Invoke) -> None:
    import dataclasses

    from stem.supervise import SuperviseOptions

    fields = {f.name: f.default for f in dataclasses.fields(SuperviseOptions)}
    shown = {
        o.name: o.default
        for o in _options(("supervise",))
        if o.name in fields and o.default is not None and not isinstance(o.default, enum.Enum)
    }
    assert len(shown) >= 12
    assert shown == {name: fields[name] for name in shown}
