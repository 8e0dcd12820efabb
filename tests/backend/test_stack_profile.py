"""The backend's app profile: its services, probes and exports, and compose.yaml from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.stack_profile import (
    BACKEND_PORT,
    BackendProfile,
    live_workers_judge,
    readyz_judge,
)
from orchestrator.compose import render_compose, service_database_url
from orchestrator.config import OrchestratorConfig
from orchestrator.spec import ExitProbe, HttpProbe, StackSpec, fill

REPO_ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `python -m orchestrator compose > compose.yaml`"


def spec_for(workers: int = 2) -> StackSpec:
    return BackendProfile().spec(OrchestratorConfig(workers=workers), run_id="run-1")


def test_the_stack_is_migrate_backend_and_replicated_workers() -> None:
    spec = spec_for(workers=3)

    assert [s.name for s in spec.services] == ["migrate", "backend", "worker"]
    assert spec.service("worker").instances() == ("worker-1", "worker-2", "worker-3")
    assert isinstance(spec.service("migrate").probe, ExitProbe)
    assert spec.service("backend").port == BACKEND_PORT
    assert spec.service("worker").depends_on == ("migrate",)
    assert spec.database.extensions == ("pgmq",)
    levels = [[s.name for s in level] for level in spec.start_levels()]
    assert levels == [["migrate", "backend"], ["worker"]]  # the backend boots with migrations


def test_the_workers_probe_asks_the_backend_for_the_live_count() -> None:
    probe = spec_for(workers=4).service("worker").probe

    assert isinstance(probe, HttpProbe)
    assert (probe.service, probe.path) == ("backend", "/api/workers")
    assert "4 live worker(s)" in probe.description


def test_readyz_counts_only_with_database_ok_and_no_pending_migration() -> None:
    ok = {"checks": {"database": {"ok": True}, "migrations": {"ok": True, "pending": []}}}
    pending = {"checks": {"database": {"ok": True}, "migrations": {"ok": False, "pending": ["x"]}}}

    assert readyz_judge(200, json.dumps(ok))[0] is True
    assert readyz_judge(200, json.dumps(pending))[0] is False
    assert readyz_judge(200, "<html>")[0] is False
    assert readyz_judge(503, json.dumps(ok)) == (False, f"HTTP 503 {json.dumps(ok)}")


def test_live_workers_judge_ignores_stopped_workers() -> None:
    judge = live_workers_judge(2)
    body = {"workers": [{"health": "HEALTHY"}, {"health": "STOPPED"}, {"health": "HEALTHY"}]}

    assert judge(200, json.dumps(body)) == (True, "2 of 2 workers live")
    assert judge(200, json.dumps({"workers": body["workers"][:2]}))[0] is False
    assert judge(500, "boom")[0] is False


def test_each_worker_gets_a_run_scoped_id() -> None:
    worker = spec_for().service("worker")

    command = [fill(p, {"instance": "worker-2", "run_id": "run-1"}) for p in worker.command]

    assert command[command.index("--worker-id") + 1] == "worker-2-run-1"


def test_exports_the_sse_intervals_the_backend_runs_with() -> None:
    assert BackendProfile().environment(spec_for()) == {
        "STACK_SSE_HEARTBEAT_INTERVAL": "1",
        "STACK_TASK_IDLE_INTERVAL": "1",
    }


def test_compose_yaml_on_disk_is_rendered_from_the_profile() -> None:
    on_disk = (REPO_ROOT / "compose.yaml").read_text()

    assert on_disk == render_compose(spec_for()), f"compose.yaml is out of date: {REGENERATE}"


def test_compose_never_contains_the_generated_password() -> None:
    spec = spec_for()

    text = render_compose(spec)

    assert spec.database.password not in text
    assert service_database_url(spec) in text


@pytest.mark.parametrize("workers", [1, 5])
def test_compose_workers_are_replicas_without_the_per_instance_id(workers: int) -> None:
    text = render_compose(spec_for(workers=workers))
    worker = text[text.index("  worker:") :]

    assert f"replicas: {workers}" in worker
    assert "--worker-id" not in worker  # each replica picks its own (hostname-pid)
    assert '"--concurrency", "4"' in worker


def test_compose_without_workers_keeps_a_zero_replica_worker() -> None:
    assert "replicas: 0" in render_compose(spec_for(workers=0))
