"""Every error stem defines sits in the one tree rooted at StemError."""

from __future__ import annotations

import importlib
import pkgutil
import re

import stem
from stem.errors import ConfigError, JobError, OutsideError, Retry, StemError, UsageError
from stem.schedule import ScheduleEntryError
from stem.worker.process_pool import ChildDied, RemoteTaskError


def _public_exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(stem.__path__, "stem."):
        if info.name.endswith("__main__"):  # importing it runs the CLI
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_public_exception_class_in_stem_derives_from_stem_error() -> None:
    classes = _public_exception_classes()

    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, StemError))

    assert len(classes) >= 15
    assert outside == []


def test_every_error_sits_in_a_group_of_who_must_act() -> None:
    groups = (UsageError, OutsideError, JobError)
    roots = {StemError, *groups, Retry}

    loose = sorted(
        name
        for name, cls in _public_exception_classes().items()
        if cls not in roots and not issubclass(cls, groups)
    )

    assert loose == []


def test_errors_about_one_job_in_a_pool_child_are_job_errors() -> None:
    assert issubclass(RemoteTaskError, JobError)
    assert issubclass(ChildDied, JobError)


def test_a_bad_schedule_entry_is_a_config_error() -> None:
    assert issubclass(ScheduleEntryError, ConfigError)


def test_every_error_class_is_drawn_in_the_tree_of_the_errors_module_docstring() -> None:
    import stem.errors

    tree = stem.errors.__doc__ or ""
    names = sorted({cls.__name__ for cls in _public_exception_classes().values()})

    assert [name for name in names if not re.search(rf"\b{name}\b", tree)] == []
