"""Python services of the local provider keep compiled bytecode between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.providers.local import service_environment


def test_without_bytecode_writing_services_cache_it_under_the_user_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.setenv("CI_STACK_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "src" / "service_module.py"
    source.parent.mkdir()
    source.write_text("VALUE = 1\n")

    env = service_environment({"PYTHONPATH": str(source.parent)})
    subprocess.run([sys.executable, "-c", "import service_module"], env=env, check=True)

    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache" / "pycache")
    cached = list((tmp_path / "cache" / "pycache").rglob("service_module*.pyc"))
    assert len(cached) == 1  # compiled once, reused by the next run
    assert not (source.parent / "__pycache__").exists()  # nothing next to the sources


@pytest.mark.parametrize(
    "setting", [{}, {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/own/prefix"}]
)
def test_a_chosen_bytecode_setting_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, setting: dict[str, str]
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    for key, value in setting.items():
        monkeypatch.setenv(key, value)

    env = service_environment({"EXTRA": "x"})

    assert env["EXTRA"] == "x"
    assert env.get("PYTHONDONTWRITEBYTECODE") == setting.get("PYTHONDONTWRITEBYTECODE")
    assert env.get("PYTHONPYCACHEPREFIX") == setting.get("PYTHONPYCACHEPREFIX")
