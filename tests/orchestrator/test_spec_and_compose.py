"""The stack spec and compose.yaml derived from it: shapes, secrets, and the drift check."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from orchestrator.compose import render_compose, service_database_url
from orchestrator.spec import (
    BACKEND_PORT,
    ExitProbe,
    HttpProbe,
    StackSpec,
    WorkersProbe,
    build_spec,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `python -m orchestrator compose > compose.yaml`"


def compose_services(text: str) -> dict[str, dict[str, object]]:
    """Each service's `command` (a JSON list), `environment` and `replicas`, from our YAML.

    Not a YAML parser: it reads the shape render_compose writes (two-space indents, JSON
    scalars), which is all the drift test needs without PyYAML.
    """
    services: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    section = ""
    in_services = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if indent == 0:
            in_services = key == "services"
            current = None
        elif in_services and indent == 2:
            current = services.setdefault(key, {"environment": {}})
            section = ""
        elif current is not None and indent == 4:
            section = key
            if key == "command":
                current["command"] = json.loads(value)
        elif current is not None and indent == 6 and section == "environment":
            environment = current["environment"]
            assert isinstance(environment, dict)
            environment[key] = json.loads(value)
        elif current is not None and indent == 6 and section == "deploy" and key == "replicas":
            current["replicas"] = int(value)
    return services


def test_build_spec_has_the_services_in_start_order() -> None:
    spec = build_spec(workers=3)

    assert [s.name for s in spec.services_in_start_order()] == [
        "migrate",
        "backend",
        "worker-1",
        "worker-2",
        "worker-3",
    ]
    assert [s.role for s in spec.workers] == ["worker"] * 3
    assert spec.migrate.args == ("migrate",)
    assert isinstance(spec.migrate.probe, ExitProbe)
    assert spec.backend.args[0] == "serve"
    assert spec.backend.port == BACKEND_PORT
    assert spec.testing is True
    assert spec.backend.env["FLASK_ENV"] == "testing"


def test_build_spec_probes_the_backend_readiness_and_the_worker_count() -> None:
    spec = build_spec(workers=4)

    assert isinstance(spec.backend.probe, HttpProbe)
    assert spec.backend.probe.path == "/api/health/readyz"
    probes = {worker.probe for worker in spec.workers}
    assert probes == {WorkersProbe(count=4)}
    assert "4 live worker(s)" in spec.workers[0].probe.description


def test_build_spec_without_workers_and_with_a_negative_count() -> None:
    assert build_spec(workers=0).workers == ()
    with pytest.raises(ValueError, match="workers must be >= 0"):
        build_spec(workers=-1)


def test_build_spec_carries_the_options_through() -> None:
    spec = build_spec(workers=1, seed=True, timeout=7.5, run_id="run-x", password="pw-given")

    assert (spec.seed, spec.timeout, spec.run_id) == (True, 7.5, "run-x")
    assert spec.database.password == "pw-given"


def test_each_spec_gets_its_own_generated_password_and_run_id() -> None:
    first, second = build_spec(), build_spec()

    assert first.database.password != second.database.password
    assert len(first.database.password) >= 16
    assert first.run_id != second.run_id


def test_the_password_is_the_secret_to_redact() -> None:
    spec = build_spec(password="s3cret-value")

    assert spec.secrets == ("s3cret-value",)


def test_specs_are_frozen() -> None:
    spec = build_spec()
    with pytest.raises(FrozenInstanceError):
        spec.timeout = 1.0  # type: ignore[misc]


def test_compose_yaml_is_rendered_from_the_spec() -> None:
    on_disk = (REPO_ROOT / "compose.yaml").read_text()

    assert on_disk == render_compose(build_spec()), f"compose.yaml is out of date: {REGENERATE}"


def test_compose_never_contains_the_generated_password() -> None:
    spec = build_spec()

    text = render_compose(spec)

    assert spec.database.password not in text
    assert "${POSTGRES_PASSWORD:-postgres}" in text


def _expected_services(spec: StackSpec) -> dict[str, dict[str, object]]:
    url = service_database_url(spec)
    expected: dict[str, dict[str, object]] = {}
    for service in (spec.migrate, spec.backend, spec.workers[0]):
        expected[service.role] = {
            "command": list(service.args),
            "environment": {"DATABASE_URL": url, **service.env},
        }
    expected["worker"]["replicas"] = len(spec.workers)
    return expected


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_compose_services_run_the_spec_commands_with_its_environment(workers: int) -> None:
    spec = build_spec(workers=workers)

    services = compose_services(render_compose(spec))

    assert set(services) == {"db", "migrate", "backend", "worker"}
    for role, expected in _expected_services(spec).items():
        actual = {key: services[role].get(key) for key in expected}
        assert actual == expected, f"compose service {role} differs from the spec"
    assert services["db"]["environment"] == {
        "POSTGRES_USER": spec.database.user,
        "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-postgres}",
        "POSTGRES_DB": spec.database.name,
    }


def test_compose_file_on_disk_matches_the_default_spec_service_by_service() -> None:
    """The same comparison on the committed file: says which service drifted."""
    services = compose_services((REPO_ROOT / "compose.yaml").read_text())

    for role, expected in _expected_services(build_spec()).items():
        actual = {key: services.get(role, {}).get(key) for key in expected}
        assert actual == expected, f"compose.yaml service {role} drifted: {REGENERATE}"


def test_compose_without_workers_has_no_worker_service() -> None:
    services = compose_services(render_compose(build_spec(workers=0)))

    assert set(services) == {"db", "migrate", "backend"}
