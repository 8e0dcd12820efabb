"""OrchestratorConfig: CLI flag > environment > [tool.ci-stack] > default, checked once."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import ConfigError, OrchestratorConfig


def pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.ci-stack]\n" + body)
    return path


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    config = OrchestratorConfig.load(env={}, pyproject=tmp_path / "none.toml")

    assert (config.app, config.provider, config.workers, config.timeout) == (
        None,  # no app profile: the orchestrator knows no app of its own
        "auto",
        2,
        60.0,
    )
    assert config.sources and set(config.sources.values()) == {"default"}


def test_flag_beats_env_beats_pyproject_beats_default(tmp_path: Path) -> None:
    toml = pyproject(tmp_path, 'workers = 5\nprovider = "docker"\ntimeout = 9\n')
    env = {"STACK_WORKERS": "4", "STACK_PROVIDER": "local"}

    config = OrchestratorConfig.load({"workers": 3}, env=env, pyproject=toml)

    assert (config.workers, config.provider, config.timeout, config.seed) == (
        3,
        "local",
        9.0,
        False,
    )
    assert config.sources == {
        **(config.sources or {}),
        "workers": "--workers",
        "provider": "STACK_PROVIDER",
        "timeout": "[tool.ci-stack] timeout",
        "seed": "default",
    }


def test_an_empty_env_value_counts_as_unset(tmp_path: Path) -> None:
    config = OrchestratorConfig.load(env={"STACK_WORKERS": " "}, pyproject=tmp_path / "x")

    assert config.workers == 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STACK_TIMEOUT": "nan"}, "STACK_TIMEOUT: 'nan' must be a finite number"),
        ({"STACK_TIMEOUT": "inf"}, "must be a finite number of seconds above 0"),
        ({"STACK_TIMEOUT": "0"}, "above 0"),
        ({"STACK_WORKERS": "-1"}, "STACK_WORKERS: '-1' must be 0 or more"),
        ({"STACK_WORKERS": "1.5"}, "is not a whole number"),
        ({"STACK_SEED": "maybe"}, "is not a yes/no value"),
    ],
)
def test_bad_values_name_the_setting_and_where_it_came_from(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        OrchestratorConfig.load(env=env, pyproject=tmp_path / "x")


def test_unknown_pyproject_keys_and_broken_toml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        OrchestratorConfig.load(env={}, pyproject=pyproject(tmp_path, "wrokers = 2\n"))
    broken = tmp_path / "broken" / "pyproject.toml"
    broken.parent.mkdir()
    broken.write_text("[tool.ci-stack\n")
    with pytest.raises(ConfigError, match="not readable TOML"):
        OrchestratorConfig.load(env={}, pyproject=broken)


def test_this_repository_selects_the_backend_profile() -> None:
    root = Path(__file__).resolve().parents[2]

    config = OrchestratorConfig.load(env={}, pyproject=root / "pyproject.toml")

    assert config.app == "backend.stack_profile:profile"
    assert config.sources and config.sources["app"] == "[tool.ci-stack] app"
