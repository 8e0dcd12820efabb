"""`ci-stack init`: set an existing repository up for ci-stack, asking nothing, never
overwriting a file.

`plan_init(root, choices)` reads the repository (`detect`) and returns what it would write
(`Plan.files`) and what it would tell the user to add to files of theirs (`Plan.additions`:
their noxfile.py and pyproject.toml are never edited). `Plan.write()` refuses with
`InitRefused` naming the first file that exists, before it writes anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.init.detect import AppFound, Migrations, find_app, find_migrations
from orchestrator.init.templates import (
    NOX_LINES,
    render_first_test,
    render_noxfile,
    render_profile,
    render_pyproject_table,
    render_workflow,
)

__all__ = [
    "PROFILE_FILE",
    "TEST_FILE",
    "WORKFLOW_FILE",
    "InitChoices",
    "InitRefused",
    "Plan",
    "plan_init",
]

PROFILE_FILE = "ci_stack_profile.py"  # not `profile.py`: the standard library has one
TEST_FILE = "e2e/test_first.py"
WORKFLOW_FILE = ".github/workflows/e2e.yml"
PROVIDERS = ("auto", "local", "docker")


class InitRefused(OrchestratorError):
    """A file `init` would write exists, or the folder is not a repository's root."""


@dataclass(frozen=True)
class InitChoices:
    """The flags of `ci-stack init`."""

    app: str | None = None  # `module:attr` or `path.py:attr`; None: look for one
    provider: str = "local"  # the workflow's and pyproject's provider
    shards: int = 2
    python: str = "3.11"
    name: str | None = None  # the profile's name; None: the folder's


@dataclass(frozen=True)
class Plan:
    root: Path
    app: AppFound | None
    migrations: Migrations | None
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    additions: dict[str, str] = field(default_factory=dict)  # their file -> lines to add

    def write(self) -> list[Path]:
        """Write every file, or none: InitRefused when one exists already."""
        for relative in self.files:
            target = self.root / relative
            if target.exists() or target.is_symlink():
                raise InitRefused(
                    f"{target} exists; ci-stack init never overwrites a file. Fix: move it "
                    "away (or rename it) and run init again"
                )
        written = []
        for relative, text in self.files.items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8") as out:  # "x": never over a file
                out.write(text)
            written.append(target)
        return written


def plan_init(root: Path, choices: InitChoices) -> Plan:
    """What `init` writes in `root` (a repository's root folder) for `choices`."""
    if not root.is_dir():
        raise InitRefused(f"{root} is not a folder. Fix: give --dir an existing repository")
    if not (root / ".git").exists():
        raise InitRefused(
            f"{root} is not the root of a git repository. Fix: run init at the repository's "
            "root (or `git init` first)"
        )
    if choices.provider not in PROVIDERS:
        raise InitRefused(f"--provider {choices.provider!r}: choose one of {', '.join(PROVIDERS)}")
    app = find_app(root, choices.app)
    if choices.app is not None and app is None:
        raise InitRefused(
            f"--app-module {choices.app}: no such file or module under {root}. Fix: name it as "
            "module:attr or path/to/file.py:attr, relative to the repository"
        )
    migrations = find_migrations(root, app)
    name = choices.name or _identifier(root.resolve().name)
    files = {
        PROFILE_FILE: render_profile(name, app, migrations),
        TEST_FILE: render_first_test(),
        WORKFLOW_FILE: render_workflow(choices.shards, choices.provider, choices.python),
    }
    additions = {}
    if (root / "noxfile.py").exists():
        additions["noxfile.py"] = NOX_LINES
    else:
        files["noxfile.py"] = render_noxfile()
    table = render_pyproject_table(PROFILE_FILE, choices.provider)
    pyproject = root / "pyproject.toml"
    if not pyproject.exists():
        files["pyproject.toml"] = table
    elif not re.search(r"^\[tool\.ci-stack\]", pyproject.read_text("utf-8"), re.MULTILINE):
        additions["pyproject.toml"] = table
    return Plan(root, app, migrations, files, additions)


def _identifier(text: str) -> str:
    """A profile name from the folder's: lower-case letters, digits and `_`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "app"
