"""Loading app profiles by reference and providers by name."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import OrchestratorConfig
from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.prepare import images_obtainable
from orchestrator.profile import AppProfile, ProfileNotFound, canonical_reference, load_profile
from orchestrator.providers.registry import choose_provider, known_providers, load_plugin
from tests.fixtures.orchestrator_cli import run_cli


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


TINY_PROFILE = """
from orchestrator.profile import AppProfile


class Tiny(AppProfile):
    name = "tiny"


profile = Tiny()
"""


def _project(root: Path, **files: str) -> Path:
    """A project: pyproject.toml and `files` (name -> text) at its root, and a subfolder."""
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n')
    (root / "sub").mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_module_profile_is_found_from_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a subfolder, with the root not on sys.path: the pyproject.toml's folder."""
    module = f"tiny_{tmp_path.name.replace('-', '_')}_profile"
    root = _project(tmp_path, **{f"{module}.py": TINY_PROFILE})
    monkeypatch.chdir(root / "sub")
    monkeypatch.setattr("sys.path", [p for p in sys.path if p not in ("", str(root))])

    assert load_profile(f"{module}:profile").name == "tiny"
    assert canonical_reference(f"{module}:profile") == f"{module}:profile"


def test_a_relative_file_profile_is_handed_on_as_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, **{"my_profile.py": TINY_PROFILE})
    monkeypatch.chdir(root / "sub")  # not found from here: found from the project root

    assert load_profile("my_profile.py:profile").name == "tiny"
    assert canonical_reference("my_profile.py:profile") == f"{root / 'my_profile.py'}:profile"


@pytest.mark.parametrize(
    ("name", "shadow"),
    [
        ("profile", "the standard library's module 'profile'"),
        ("requests", "the installed module 'requests'"),
    ],
)
def test_a_profile_module_that_another_module_shadows_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, shadow: str
) -> None:
    """`profile:profile` for a profile.py would load the standard library's `profile` in one
    process and the file in another: refused, naming the file and the two fixes."""
    root = _project(tmp_path, **{f"{name}.py": TINY_PROFILE})
    monkeypatch.chdir(root)

    with pytest.raises(ProfileNotFound) as caught:
        load_profile(f"{name}:profile")

    message = str(caught.value)
    assert "\n" not in message
    assert f"{root / name}.py is shadowed by {shadow}" in message
    assert message.endswith(
        f"Fix: rename it (e.g. {name}_profile.py), or name it by path: {name}.py:profile"
    )
    assert load_profile(f"{name}.py:profile").name == "tiny"  # by path it loads


def test_the_cli_refuses_a_shadowed_profile_in_one_line(tmp_path: Path) -> None:
    root = _project(tmp_path, **{"profile.py": TINY_PROFILE})
    (root / "pyproject.toml").write_text('[tool.ci-stack]\napp = "profile:profile"\n')

    result = run_cli("compose", cwd=root, env={"STACK_APP": ""}, timeout=30)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("ci-stack: app profile 'profile:profile': ")
    assert "shadowed by the standard library's module 'profile'" in line


def test_a_profile_without_services_or_images_says_so() -> None:
    bare = AppProfile()
    with pytest.raises(NotImplementedError, match="must define services"):
        bare.spec(OrchestratorConfig())
    with pytest.raises(PrerequisiteMissing, match="has no container images"):
        bare.prepare_images(None)


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

    choice = choose_provider(OrchestratorConfig(provider="local"), images_obtainable(profile))
    auto = choose_provider(OrchestratorConfig(provider="auto"), images_obtainable(profile))

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
