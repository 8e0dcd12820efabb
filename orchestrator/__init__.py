"""ci-stack's orchestrator: throwaway test stacks for an app described by a profile.

    from orchestrator import OrchestratorConfig, open_stack
    with open_stack(OrchestratorConfig.load({"provider": "local"})) as run:
        print(run.backend_url)          # the app's URL; run.environment() for all STACK_*

Importing this package is cheap: each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.profile import AppProfile, ContainerImage, load_profile
    from orchestrator.providers.base import Provider, ProviderPlugin
    from orchestrator.session import Run, open_stack
    from orchestrator.spec import (
        DatabaseSchema,
        DatabaseSpec,
        ExitProbe,
        HttpProbe,
        PostgresProbe,
        ServiceSpec,
        StackSpec,
    )
    from orchestrator.stack import Stack

_PUBLIC = {
    "AppProfile": "orchestrator.profile",
    "ContainerImage": "orchestrator.profile",
    "DatabaseSchema": "orchestrator.spec",
    "DatabaseSpec": "orchestrator.spec",
    "ExitProbe": "orchestrator.spec",
    "HttpProbe": "orchestrator.spec",
    "OrchestratorConfig": "orchestrator.config",
    "PostgresProbe": "orchestrator.spec",
    "Provider": "orchestrator.providers.base",
    "ProviderPlugin": "orchestrator.providers.base",
    "Run": "orchestrator.session",
    "ServiceSpec": "orchestrator.spec",
    "Stack": "orchestrator.stack",
    "StackSpec": "orchestrator.spec",
    "load_profile": "orchestrator.profile",
    "open_stack": "orchestrator.session",
}
__all__ = [
    "AppProfile",
    "ContainerImage",
    "DatabaseSchema",
    "DatabaseSpec",
    "ExitProbe",
    "HttpProbe",
    "OrchestratorConfig",
    "PostgresProbe",
    "Provider",
    "ProviderPlugin",
    "Run",
    "ServiceSpec",
    "Stack",
    "StackSpec",
    "load_profile",
    "open_stack",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
