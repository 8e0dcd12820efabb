"""What CMD is told about the profile the CLI resolved (`orchestrator.cli.handoff`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from orchestrator.cli.handoff import profile_environment


def test_a_file_reference_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "profile_file.py").write_text("profile = None\n")

    assert profile_environment("app/profile_file.py:profile", {}) == {
        "STACK_APP": f"{tmp_path / 'app' / 'profile_file.py'}:profile"
    }


def test_a_module_found_in_the_first_path_entry_puts_its_folder_on_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "handoff_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "stackprofile.py").write_text("profile = None\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])  # as `python -m` puts the cwd
    monkeypatch.delitem(sys.modules, "handoff_pkg", raising=False)
    monkeypatch.delitem(sys.modules, "handoff_pkg.stackprofile", raising=False)
    __import__("handoff_pkg.stackprofile")

    told = profile_environment("handoff_pkg.stackprofile:profile", {"PYTHONPATH": "/elsewhere"})

    assert told == {
        "STACK_APP": "handoff_pkg.stackprofile:profile",
        "PYTHONPATH": os.pathsep.join([str(tmp_path.resolve()), "/elsewhere"]),
    }


def test_an_installed_module_needs_no_pythonpath() -> None:
    assert profile_environment("json.decoder:JSONDecoder", {}) == {
        "STACK_APP": "json.decoder:JSONDecoder"
    }


def test_up_removes_its_state_file_only_while_the_file_still_names_it(tmp_path: Path) -> None:
    import json
    import os

    from orchestrator.cli.up import _written_by_us

    state = tmp_path / "up.json"
    state.write_text(json.dumps({"pid": os.getpid()}))
    assert _written_by_us(state)
    state.write_text(json.dumps({"pid": os.getpid() + 1}))  # another `up` took it over
    assert not _written_by_us(state)
    state.write_text("{half")
    assert not _written_by_us(state)
    assert not _written_by_us(tmp_path / "gone.json")
