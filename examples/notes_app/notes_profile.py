"""The orchestrator's app profile for `notes.py`: one job, one web service, no workers.

Use it from anywhere, by file or (with this folder importable) by module:
    python -m orchestrator run --app path/to/notes_app/notes_profile.py:profile -- pytest tests
Its images: the orchestrator's PostgreSQL+PGMQ image and `image/Dockerfile` (Python, the
app's two dependencies installed on the host, notes.py at the path it has here).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from orchestrator import AppProfile, ExitProbe, HttpProbe, ServiceSpec
from orchestrator.config import OrchestratorConfig
from orchestrator.images import (
    POSTGRES_PGMQ,
    SITE_ARCHIVE,
    ContextSource,
    ImageRecipe,
    postgres_pgmq_image,
    python_site_packages,
)
from orchestrator.spec import DatabaseSpec

HERE = Path(__file__).resolve().parent
APP_FILE = HERE / "notes.py"
ENV = {"NOTES_DSN": "{database_url}", "PYTHONUNBUFFERED": "1"}
REQUIREMENTS = ("psycopg[binary]>=3.1", "waitress>=3.0")  # what notes.py imports


def image_files(cache_dir: Path) -> dict[str, ContextSource]:
    deps = python_site_packages(REQUIREMENTS, image="notes", cache_dir=cache_dir)
    return {f"deps/{SITE_ARCHIVE}": deps.archive, "app/notes.py": APP_FILE}


class NotesProfile(AppProfile):
    name = "notes"
    web_service = "web"

    def database(self, config: OrchestratorConfig) -> DatabaseSpec:
        return DatabaseSpec(name="notes", image=POSTGRES_PGMQ)

    def services(self, config: OrchestratorConfig) -> tuple[ServiceSpec, ...]:
        # The file runs where it lies; its image puts it at the same path.
        script = ("{python}", str(APP_FILE))
        return (
            ServiceSpec(
                name="migrate", role="job", command=(*script, "migrate"), env=ENV,
                image="notes", probe=ExitProbe(),
            ),
            ServiceSpec(
                name="web", role="web",
                command=(*script, "serve", "--host", "{host}", "--port", "{port}"),
                env=ENV, image="notes", port=8080, depends_on=("migrate",),
                probe=HttpProbe("/health/ready", "GET /health/ready answers 200"),
            ),
        )  # fmt: skip

    def images(self) -> tuple[ImageRecipe, ...]:
        notes = ImageRecipe("notes", HERE / "image", image_files, {"APP_DIR": str(HERE)})
        return (postgres_pgmq_image(), notes)

    def reset(self, base_url: str, seed: bool, headers: Mapping[str, str]) -> dict[str, Any]:
        response = requests.delete(f"{base_url}/notes", headers=dict(headers), timeout=10)
        response.raise_for_status()
        return dict(response.json())


profile = NotesProfile()
