"""Providers by name: the built-in `local` and `docker`, plus any registered under the
entry-point group `ci_stack.providers` (value: an object with `name`, `auto_rank`,
`runs_images`, `available(config)` and `create(config)`; see `providers.base.ProviderPlugin`).

`auto` tries the available plugins from the lowest `auto_rank` up and says which it took
and why the others were passed over. For a plugin that runs images it also asks `images`
(the prepare step's cheap check, `prepare.images_obtainable`) whether they can be had.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from orchestrator.errors import OrchestratorError, PrerequisiteMissing

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.prepare import ImageCheck
    from orchestrator.providers.base import ProviderPlugin

ENTRY_POINT_GROUP = "ci_stack.providers"
AUTO = "auto"
BUILT_IN = {
    "local": "orchestrator.providers.local:plugin",
    "docker": "orchestrator.providers.docker:plugin",
}


@dataclass(frozen=True)
class Choice:
    plugin: ProviderPlugin
    reason: str

    @property
    def name(self) -> str:
        return self.plugin.name


def known_providers() -> dict[str, str]:
    """name → `module:attr` of every provider this installation knows."""
    found = dict(BUILT_IN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def load_plugin(name: str) -> ProviderPlugin:
    known = known_providers()
    if name not in known:
        raise OrchestratorError(
            f"unknown provider {name!r}: use {AUTO}, {', '.join(sorted(known))} "
            f"(--provider or STACK_PROVIDER; plugins register under {ENTRY_POINT_GROUP})"
        )
    module_name, _, attr = known[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PrerequisiteMissing(
            f"provider {name!r} needs the Python package {exc.name!r}, which is not installed",
            f"pip install 'ci-stack[{name}]' (or the package that provides {name!r})",
        ) from None
    plugin: ProviderPlugin = getattr(module, attr)
    return plugin


def _available(
    plugin: ProviderPlugin, config: OrchestratorConfig, images: ImageCheck | None
) -> tuple[bool, str]:
    ok, why = plugin.available(config)
    if not ok or images is None or not getattr(plugin, "runs_images", False):
        return ok, why
    images_ok, how = images()
    return (True, why) if images_ok else (False, f"{why}, but {how}")


def choose_provider(config: OrchestratorConfig, images: ImageCheck | None = None) -> Choice:
    """The configured provider, or for `auto` the first available one; explained. A
    plugin that runs images is available only when `images()` says they can be had."""
    requested = config.provider.strip().lower()
    if requested != AUTO:
        plugin = load_plugin(requested)
        ok, why = _available(plugin, config, images)
        if not ok:
            raise PrerequisiteMissing(
                f"--provider {requested} cannot run here: {why}",
                _fix_for(requested),
            )
        return Choice(plugin, f"requested; {why}")
    passed_over: list[str] = []
    candidates = []
    for name in known_providers():
        try:
            candidates.append(load_plugin(name))
        except PrerequisiteMissing as exc:
            passed_over.append(f"{name}: {exc.what}")
    for plugin in sorted(candidates, key=lambda p: (p.auto_rank, p.name)):
        ok, why = _available(plugin, config, images)
        if ok:
            reasons = "; ".join([*passed_over, why])
            return Choice(plugin, f"auto: {reasons}")
        passed_over.append(why)
    raise PrerequisiteMissing(
        "no provider can run here: " + "; ".join(passed_over), "see the reasons above"
    )


def _fix_for(name: str) -> str:
    if name == "docker":
        return (
            "start Docker (e.g. `dockerd &` or `systemctl start docker`), or use --provider local"
        )
    return "use --provider local, or fix what the reason names"
