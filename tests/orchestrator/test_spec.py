"""The generic stack spec: validation, dependency levels, replicas and placeholders."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from orchestrator.spec import (
    DatabaseSpec,
    ExitProbe,
    HttpProbe,
    ServiceSpec,
    StackSpec,
    fill,
    rendered,
)


def service(name: str, *depends: str, **kwargs: object) -> ServiceSpec:
    probe = kwargs.pop("probe", ExitProbe())
    return ServiceSpec(
        name=name,
        role="job",
        command=("true",),
        probe=probe,  # type: ignore[arg-type]
        depends_on=depends,
        **kwargs,
    )  # type: ignore[arg-type]


def stack(*services: ServiceSpec) -> StackSpec:
    return StackSpec(run_id="r1", app="t", database=DatabaseSpec(), services=services)


def test_start_levels_follow_depends_on_and_run_independent_services_together() -> None:
    spec = stack(service("a"), service("b", "a"), service("c"), service("d", "b", "c"))

    levels = [[s.name for s in level] for level in spec.start_levels()]

    assert levels == [["a", "c"], ["b"], ["d"]]


def test_a_dependency_cycle_is_refused_naming_the_services() -> None:
    with pytest.raises(ValueError, match="cycle among: a, b"):
        stack(service("a", "b"), service("b", "a"))


def test_unknown_dependencies_and_probe_targets_are_refused() -> None:
    with pytest.raises(ValueError, match=r"a refers to unknown service\(s\) \['nope'\]"):
        stack(service("a", "nope"))
    probe = HttpProbe("/x", "x", service="ghost")
    with pytest.raises(ValueError, match="ghost"):
        stack(service("a", probe=probe))


def test_names_must_be_unique_and_not_the_database() -> None:
    with pytest.raises(ValueError, match="used twice: a"):
        stack(service("a"), service("a"))
    with pytest.raises(ValueError, match="reserved"):
        service("db")


def test_an_own_http_probe_needs_a_port() -> None:
    with pytest.raises(ValueError, match="needs a port"):
        service("web", probe=HttpProbe("/ready", "ready"))


def test_replicas_name_their_instances_and_none_means_one_plain_instance() -> None:
    assert service("w", replicas=3).instances() == ("w-1", "w-2", "w-3")
    assert service("w", replicas=0).instances() == ()
    assert service("w").instances() == ("w",)
    with pytest.raises(ValueError, match="replicas"):
        service("w", replicas=-1)


def test_placeholders_are_filled_and_other_braces_left_alone() -> None:
    values = {"port": "8080", "instance": "w-2"}

    assert fill("--port={port}", values) == "--port=8080"
    assert fill('{"json": {port}}', values) == '{"json": 8080}'
    assert fill("{unknown} {instance}", values) == "{unknown} w-2"
    assert fill("{run_id}", values) == "{run_id}"  # known but not given: kept visible


def test_rendered_fills_command_and_env() -> None:
    spec = ServiceSpec(
        name="w",
        role="worker",
        command=("{python}", "-m", "app", "--id", "{instance}"),
        probe=ExitProbe(),
        env={"DB": "{database_url}"},
    )

    command, env = rendered(spec, {"python": "/py", "instance": "w-1", "database_url": "pg://x"})

    assert command == ["/py", "-m", "app", "--id", "w-1"]
    assert env == {"DB": "pg://x"}


def test_specs_are_frozen_and_each_database_gets_its_own_password() -> None:
    spec = stack(service("a"))
    with pytest.raises(FrozenInstanceError):
        spec.timeout = 1.0  # type: ignore[misc]
    first, second = DatabaseSpec(), DatabaseSpec()
    assert first.password != second.password and len(first.password) >= 16
    assert spec.secrets == (spec.database.password,)
    assert spec.database.password not in repr(spec)
