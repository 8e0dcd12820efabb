"""The orchestrator's app profile for `notes.py`: one job, one web service, no workers.

Use it from anywhere:
    python -m orchestrator run --app path/to/notes_app/profile.py:profile -- pytest tests
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from orchestrator import AppProfile, ContainerImage, ExitProbe, HttpProbe, ServiceSpec
from orchestrator.config import OrchestratorConfig
from orchestrator.spec import DatabaseSpec

HERE = Path(__file__).resolve().parent
APP_FILE = HERE / "notes.py"
ENV = {"NOTES_DSN": "{database_url}", "PYTHONUNBUFFERED": "1"}


class NotesProfile(AppProfile):
    name = "notes"
    web_service = "web"

    def database(self, config: OrchestratorConfig) -> DatabaseSpec:
        return DatabaseSpec(name="notes", image="postgres")

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

    def prepare_images(
        self, client: Any, log_path: Path | None = None
    ) -> Mapping[str, ContainerImage]:
        """Postgres from the orchestrator's images; our app on the backend's Python image."""
        from orchestrator.images import build_images

        built = build_images(client=client, log_path=log_path)
        base = built["backend"].tag
        source = APP_FILE.read_bytes()
        digest = hashlib.sha256(base.encode() + str(APP_FILE).encode() + source).hexdigest()
        tag = f"ci-stack/notes:{digest[:16]}"
        if not client.images.list(name=tag):
            dockerfile = f"FROM {base}\nCOPY notes.py {APP_FILE}\nENTRYPOINT []\n"
            context = io.BytesIO()
            with tarfile.open(fileobj=context, mode="w") as tar:
                for name, data in (("Dockerfile", dockerfile.encode()), ("notes.py", source)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            context.seek(0)
            client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
        return {
            "postgres": ContainerImage(built["postgres-pgmq"].tag, built["postgres-pgmq"].image_id),
            "notes": ContainerImage(tag),
        }

    def reset(self, base_url: str, seed: bool, headers: Mapping[str, str]) -> dict[str, Any]:
        response = requests.delete(f"{base_url}/notes", headers=dict(headers), timeout=10)
        response.raise_for_status()
        return dict(response.json())


profile = NotesProfile()
