"""Loading app profiles by reference and providers by name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.config import OrchestratorConfig
from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.profile import AppProfile, ProfileNotFound, load_profile
from orchestrator.providers.registry import choose_provider, known_providers, load_plugin


def test_the_backend_profile_loads_by_module_reference() -> None:
    profile = load_profile("backend.stack_profile:profile")

    assert profile.name == "backend" and profile.web_service == "backend"


def test_a_profile_loads_from_a_file_path_as_instance_class_or_factory(tmp_path: Path) -> None:
    path = tmp_path / "my_profile.py"
    path.write_text(
        textwrap.dedent("""
        from orchestrator.profile import AppProfile

        class Mine(AppProfile):
            name = "mine"

        instance = Mine()

        def make():
            return Mine()
        not_a_profile = 42
    """)
    )

    for attr in ("instance", "Mine", "make"):
        assert load_profile(f"{path}:{attr}").name == "mine"
    with pytest.raises(ProfileNotFound, match="is a int, not an AppProfile"):
        load_profile(f"{path}:not_a_profile")


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no-colon", "not of the form module:attr"),
        ("nope_module_x:profile", "module 'nope_module_x' not found"),
        ("backend.stack_profile:missing", "has no attribute 'missing'"),
        ("/no/such/file.py:profile", "no file /no/such/file.py"),
    ],
)
def test_bad_references_say_what_is_wrong(reference: str, message: str) -> None:
    with pytest.raises(ProfileNotFound, match=message):
        load_profile(reference)


def test_a_profile_without_services_or_images_says_so() -> None:
    bare = AppProfile()
    with pytest.raises(NotImplementedError, match="must define services"):
        bare.spec(OrchestratorConfig())
    with pytest.raises(PrerequisiteMissing, match="has no container images"):
        bare.prepare_images(None, print)


def test_both_built_in_providers_are_registered() -> None:
    assert {"local", "docker"} <= set(known_providers())
    assert load_plugin("local").auto_rank < 100


def test_an_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(
        OrchestratorError, match="unknown provider 'podman': use auto, docker, local"
    ):
        load_plugin("podman")


def test_auto_takes_the_lowest_ranked_available_provider_and_says_why() -> None:
    profile = load_profile("backend.stack_profile:profile")

    choice = choose_provider(OrchestratorConfig(provider="local"), profile)
    auto = choose_provider(OrchestratorConfig(provider="auto"), profile)

    assert choice.name == "local" and choice.reason.startswith("requested")
    assert auto.reason.startswith("auto: ")
    assert auto.name in ("docker", "local")


def test_the_readme_profile_example_builds_a_valid_stack() -> None:
    """The README's "Use it for your own app" example, run as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Use it for your own app") :]
    code = section[
        section.index("```python\n") + 10 : section.index("```\n", section.index("```python\n"))
    ]
    namespace: dict[str, object] = {}

    exec(compile(code, "README.md", "exec"), namespace)

    profile = namespace["profile"]
    assert isinstance(profile, AppProfile)
    spec = profile.spec(OrchestratorConfig(workers=2))
    assert [s.name for level in spec.start_levels() for s in level] == ["migrate", "web", "worker"]
    assert spec.service("worker").instances() == ("worker-1", "worker-2")
