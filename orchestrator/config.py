"""Every setting of the orchestrator, with one precedence: CLI flag > env > pyproject > default.

`OrchestratorConfig.load(flags)` reads the environment (`STACK_*`) and the nearest
`pyproject.toml`'s `[tool.ci-stack]` table; `SETTINGS` is the table the CLI help and the
README are made from. Values are checked here, once: a bad one raises `ConfigError` with one
line naming the setting, where it came from and what is allowed.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, Self

from orchestrator.errors import OrchestratorError

DEFAULT_ARTIFACTS = Path("artifacts/stack")
DEFAULT_HISTORY = Path(".ci-stack/history")  # under the project root
HISTORY_OFF = ("off", "no", "false", "0", "none")  # values of `history` that turn it off
PYPROJECT_TABLE = "ci-stack"


class ConfigError(OrchestratorError):
    """A setting has a value it cannot take."""


# -- validators (the only copies in the orchestrator) ---------------------------------------


def whole_number(raw: object) -> int:
    """An int >= 0 ("2", 2); bools and fractions are refused."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a whole number")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{raw!r} must be 0 or more")
    return value


def seconds(raw: object) -> float:
    """A finite number of seconds > 0 (nan and inf are refused: they never time out)."""
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{raw!r} must be a finite number of seconds above 0")
    return value


def flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not a yes/no value (use 1/0, true/false)")


def text(raw: object) -> str:
    value = str(raw).strip()
    if not value:
        raise ValueError("it is empty")
    return value


def path(raw: object) -> Path:
    return Path(text(raw)).expanduser()


def count(raw: object) -> int:
    """A whole number of 1 or more."""
    value = whole_number(raw)
    if value < 1:
        raise ValueError(f"{raw!r} must be 1 or more")
    return value


def entries(raw: object) -> tuple[str, ...]:
    """A list of strings (pyproject), or one string: one entry per line, or comma-separated
    when it has no line break ("a, b"); empty entries are dropped."""
    if isinstance(raw, list | tuple):
        if not all(isinstance(item, str) for item in raw):
            raise ValueError(f"{raw!r} must be a list of strings")
        items: list[str] = list(raw)
    elif isinstance(raw, str):
        items = raw.splitlines() if "\n" in raw else raw.split(",")
    else:
        raise ValueError(f"{raw!r} must be a string or a list of strings")
    return tuple(item.strip() for item in items if item.strip())


def path_or_off(raw: object) -> Path | Literal[False]:
    """A folder, or False for `off` (also no/false/0/none; a TOML `false`)."""
    if raw is False or str(raw).strip().lower() in HISTORY_OFF:
        return False
    return path(raw)


# -- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # attribute of OrchestratorConfig and key in [tool.ci-stack]
    env: str
    parse: Callable[[object], Any]
    help: str
    flag: str | None = None  # the CLI option, when there is one
    ci_default: object = None  # the default when the environment has CI set (as on GitHub)

    @property
    def key(self) -> str:
        return self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("app", "STACK_APP", text, "the app profile, module:attr", "--app"),
    Setting("provider", "STACK_PROVIDER", text, "auto, local, docker or a plugin's", "--provider"),
    Setting("workers", "STACK_WORKERS", whole_number, "worker processes", "--workers"),
    Setting("artifacts", "STACK_ARTIFACTS", path, "the run's artifacts folder", "--artifacts"),
    Setting("seed", "STACK_SEED", flag, "load the app's seed dataset", "--seed"),
    Setting(
        "timeout", "STACK_TIMEOUT", seconds, "seconds a service may take to be ready", "--timeout"
    ),
    Setting(
        "pg_bindir", "STACK_PG_BINDIR", path, "PostgreSQL bin dir (local provider)", "--pg-bindir"
    ),
    Setting("pg_tmpdir", "STACK_PG_TMPDIR", path, "where the local database lives"),
    Setting(
        "retries",
        "STACK_RETRIES",
        whole_number,
        "times a failed test is run again",
        "--retries",
        ci_default=2,
    ),
    Setting(
        "fail_on_flaky",
        "STACK_FAIL_ON_FLAKY",
        flag,
        "a flaky test (failed, then passed on retry) fails the run",
        "--fail-on-flaky",
    ),
    Setting(
        "quarantine",
        "STACK_QUARANTINE",
        entries,
        "tests that run but never fail the run: node ids or fnmatch patterns, or a file of them",
        "--quarantine",
    ),
    Setting(
        "repeat_each",
        "STACK_REPEAT_EACH",
        count,
        "times every selected test runs (each repeat its own node id)",
        "--repeat-each",
    ),
    Setting(
        "history",
        "STACK_HISTORY",
        path_or_off,
        "folder of the run history (labels failures new, failing before, known flaky); off: none",
        "--history",
    ),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class OrchestratorConfig:
    """One run's settings, resolved. `sources` says where each value came from."""

    app: str | None = None  # no default: a project names its own (pyproject, STACK_APP)
    provider: str = "auto"
    workers: int = 2
    artifacts: Path = DEFAULT_ARTIFACTS
    seed: bool = False
    timeout: float = 60.0
    pg_bindir: Path | None = None
    pg_tmpdir: Path | None = None
    retries: int = 0
    fail_on_flaky: bool = False
    quarantine: tuple[str, ...] = ()
    repeat_each: int = 1
    history: Path | Literal[False] | None = None  # None: DEFAULT_HISTORY under the root
    sources: Mapping[str, str] | None = None
    # The project root: the folder of the pyproject.toml read (profiles are found from it)
    root: Path | None = None

    @classmethod
    def load(
        cls,
        flags: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
        pyproject: Path | None = None,
    ) -> Self:
        """Resolve every setting: `flags` (None values = not given) > env > pyproject."""
        env = os.environ if env is None else env
        pyproject = pyproject if pyproject is not None else find_pyproject()
        table = read_pyproject_table(pyproject)
        unknown = sorted(set(table) - {s.key for s in SETTINGS} - {s.name for s in SETTINGS})
        if unknown:
            raise ConfigError(
                f"[tool.{PYPROJECT_TABLE}] has unknown key(s) {', '.join(unknown)}: "
                f"known are {', '.join(s.key for s in SETTINGS)}"
            )
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for setting in SETTINGS:
            given = (flags or {}).get(setting.name)
            table_value = table.get(setting.key, table.get(setting.name))
            if given is not None:
                raw, source = given, setting.flag or setting.name
            elif env.get(setting.env, "").strip():
                raw, source = env[setting.env], setting.env
            elif table_value is not None:
                raw, source = table_value, f"[tool.{PYPROJECT_TABLE}] {setting.key}"
            elif setting.ci_default is not None and env.get("CI", "").strip():
                raw, source = setting.ci_default, "CI"
            else:
                sources[setting.name] = "default"
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{source}: {exc}") from None
            sources[setting.name] = source
        root = pyproject.resolve().parent if pyproject is not None else None
        return cls(**values, sources=sources, root=root)

    @property
    def history_folder(self) -> Path | None:
        """Where the run history is: the `history` setting (a relative path from the working
        directory), by default `.ci-stack/history/` under the project root; None when off."""
        if self.history is False:
            return None
        if self.history is None:
            return (self.root or Path.cwd()) / DEFAULT_HISTORY
        return self.history

    def with_values(self, **changes: Any) -> Self:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """For stack.json: each value and where it came from."""
        return {
            f.name: {"value": str(getattr(self, f.name)), "from": (self.sources or {}).get(f.name)}
            for f in fields(self)
            if f.name not in ("sources", "root")
        }


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml from `start` (the working directory) upwards."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def read_pyproject_table(pyproject: Path | None) -> dict[str, Any]:
    if pyproject is None or not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{pyproject}: not readable TOML ({exc})") from None
    table = data.get("tool", {}).get(PYPROJECT_TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.{PYPROJECT_TABLE}] must be a table")
    return table
