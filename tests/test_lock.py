"""constraints.txt (the lock our sessions and CI install from) agrees with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import noxfile

ROOT = Path(__file__).resolve().parent.parent


def locked_versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / noxfile.LOCK).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_every_requirement_of_the_locked_extras_is_pinned_within_its_range() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = root["project"]
    demo = tomllib.loads((ROOT / noxfile.DEMO_APP / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in [*project["dependencies"], *demo["dependencies"]]]
    for extra in noxfile.LOCKED_EXTRAS:
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    for group in noxfile.LOCKED_GROUPS:
        requirements += [Requirement(r) for r in root["dependency-groups"][group]]
    pins = locked_versions()
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name == canonicalize_name(project["name"]):
            continue  # the project's own extras, resolved through their members
        if name not in pins:
            problems.append(f"{requirement.name} is not in {noxfile.LOCK}")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement.name}=={pins[name]} is outside {requirement}")
    assert not problems, "; ".join(problems) + ". Fix: nox -s lock"


def test_the_lint_tools_are_locked() -> None:
    pins = locked_versions()
    assert {"ruff", "mypy", "check-jsonschema"} <= set(pins)
