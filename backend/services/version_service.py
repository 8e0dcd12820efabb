"""Build facts reported by the version stream."""

from __future__ import annotations

import platform
from typing import Any

from backend.config import Settings


class VersionService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def get_version_info(self) -> dict[str, Any]:
        return {
            "version": self.settings.version,
            "environment": self.settings.environment,
            "git_commit": self.settings.git_commit,
            "python_version": platform.python_version(),
        }
