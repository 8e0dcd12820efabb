"""The notes app's own suite, run against a stack the orchestrator started.

The fixtures (`api`, `reset_db`, `backend_url`) come from the orchestrator's pytest plugin.
"""

from __future__ import annotations

from typing import Any


def test_a_note_is_stored_and_listed(api: Any, reset_db: Any) -> None:
    reset_db()

    created = api.post("/notes", json={"text": "buy milk"})

    assert created.status_code == 201, created.text
    assert api.get("/notes").json() == [{"id": 1, "text": "buy milk"}]


def test_an_empty_note_is_refused(api: Any) -> None:
    response = api.post("/notes", json={"text": ""})

    assert response.status_code == 400
    assert "non-empty" in response.json()["error"]


def test_the_app_is_ready_and_unknown_routes_are_404(api: Any) -> None:
    assert api.get("/health/ready").json() == {"ready": True}
    assert api.get("/nope").status_code == 404
