"""Child specs are checked when built and cannot change afterwards."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from supervisor import ChildSpec, RestartType, Supervisor, SupervisorConfigError


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": ""},
        {"name": "has space"},
        {"name": "dotted.name"},
        {"name": "-leading-dash"},
        {"argv": []},
        {"argv": ["python", ""]},
        {"env": {"KEY": 1}},
        {"replicas": 0},
        {"replicas": 1.5},
        {"restart": "permanent"},
        {"stop_timeout_s": 0},
        {"stop_timeout_s": math.nan},
        {"heartbeat_timeout_s": -1},
        {"max_rss_mb": 0},
    ],
)
def test_an_invalid_spec_is_rejected_with_a_config_error_naming_the_child(
    kwargs: dict[str, Any],
) -> None:
    fields: dict[str, Any] = {"name": "worker", "argv": ["true"], **kwargs}

    with pytest.raises(SupervisorConfigError, match="child"):
        ChildSpec(**fields)


def test_a_spec_copies_argv_and_env_so_later_changes_do_not_leak_in() -> None:
    argv = ["python", "-m", "app"]
    env = {"A": "1"}
    spec = ChildSpec("app", argv, env=env)

    argv.append("--oops")
    env["B"] = "2"

    assert (spec.argv, dict(spec.env)) == (("python", "-m", "app"), {"A": "1"})
    with pytest.raises(TypeError):
        spec.env["C"] = "3"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.replicas = 2  # type: ignore[misc]


def test_labels_number_replicas_from_one() -> None:
    spec = ChildSpec("worker", ["true"], replicas=3, restart=RestartType.TRANSIENT)

    assert spec.labels() == ["worker.1", "worker.2", "worker.3"]


def test_a_supervisor_rejects_duplicate_names_and_an_empty_spec_list() -> None:
    with pytest.raises(SupervisorConfigError, match="unique"):
        Supervisor([ChildSpec("a", ["true"]), ChildSpec("a", ["false"])])
    with pytest.raises(SupervisorConfigError, match="at least one"):
        Supervisor([])


@pytest.mark.parametrize("kwargs", [{"health_interval_s": 0}, {"status_interval_s": -1.0}])
def test_a_supervisor_rejects_non_positive_intervals(kwargs: dict[str, float]) -> None:
    with pytest.raises(SupervisorConfigError):
        Supervisor([ChildSpec("a", ["true"])], **kwargs)  # type: ignore[arg-type]
