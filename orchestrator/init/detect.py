"""What `ci-stack init` learns from a repository by reading it (nothing is imported or run).

- `find_app(root)`: a Flask app (`NAME = Flask(__name__)`, or a `create_app` factory) or a
  plain WSGI callable (`def app(environ, start_response)`), in the first Python file that has
  one (the repository's own files; virtualenvs, tests and hidden folders are skipped).
- `find_migrations(root, app)`: how its schema is made: a `migrate` subcommand of the app's
  own script, Flask-Migrate's `migrations/`, or an `alembic.ini`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["AppFound", "Migrations", "find_app", "find_migrations", "module_name"]

SKIPPED_FOLDERS = {"tests", "test", "e2e", "node_modules", "build", "dist", "site-packages"}
MAX_DEPTH = 3  # folders below the root searched for the app
MAX_FILE_BYTES = 512 * 1024

_FLASK_OBJECT = re.compile(r"^(\w+)\s*=\s*(?:flask\.)?Flask\(\s*__name__", re.MULTILINE)
_FACTORY = re.compile(r"^def (create_app|make_app)\(", re.MULTILINE)
_WSGI = re.compile(r"^def (\w+)\(\s*environ\b[^,]*,\s*\w+", re.MULTILINE)
_SUBCOMMAND = r"""add_parser\(\s*["']{}["']"""
_DATABASE_VARIABLE = re.compile(
    r"""(?:environ\[|environ\.get\(|getenv\()\s*["']([A-Z0-9_]*(?:DSN|DATABASE|DB_URL)[A-Z0-9_]*)["']"""
)


@dataclass(frozen=True)
class AppFound:
    """An app `ci-stack init` can run: where it is and what kind."""

    path: Path  # relative to the root
    attr: str  # the app object, or the factory
    kind: Literal["flask", "flask-factory", "wsgi"]
    serve_command: bool  # the file has its own `serve` subcommand taking --port
    migrate_command: bool  # the file has its own `migrate` subcommand
    database_variable: str | None  # the environment variable it reads its database URL from

    @property
    def module(self) -> str:
        return module_name(self.path)

    @property
    def reference(self) -> str:
        """`module:attr` as Flask's --app and waitress take it (a factory is called)."""
        call = "()" if self.kind == "flask-factory" else ""
        return f"{self.module}:{self.attr}{call}"


@dataclass(frozen=True)
class Migrations:
    tool: Literal["script", "flask-migrate", "alembic"]
    path: Path  # relative to the root: the script, the migrations folder or alembic.ini


def module_name(path: Path) -> str:
    """`pkg/app.py` → `pkg.app`; `pkg/__init__.py` → `pkg`."""
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _python_files(root: Path) -> Iterator[Path]:
    """The repository's own Python files, shallow ones first, in a stable order."""
    level = [root]
    for _ in range(MAX_DEPTH + 1):
        below: list[Path] = []
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and not entry.is_symlink():
                    skipped = entry.name.startswith((".", "_")) or entry.name in SKIPPED_FOLDERS
                    if not skipped and not (entry / "pyvenv.cfg").exists():
                        below.append(entry)
                elif entry.suffix == ".py" and entry.is_file():
                    yield entry
        level = below


def find_app(root: Path, reference: str | None = None) -> AppFound | None:
    """The app `reference` (`module:attr` or `path.py:attr`) names, else the first found."""
    for path in _python_files(root):
        relative = path.relative_to(root)
        if reference is not None and not _names(reference, relative):
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found = _app_in(relative, text, reference)
        if found is not None:
            return found
    return None


def _names(reference: str, relative: Path) -> bool:
    target = reference.rpartition(":")[0] or reference
    if target.endswith(".py") or "/" in target:
        return Path(target) == relative
    return module_name(relative) == target


def _app_in(relative: Path, text: str, reference: str | None) -> AppFound | None:
    wanted = (
        reference.rpartition(":")[2].removesuffix("()") if reference and ":" in reference else None
    )
    candidates: list[tuple[str, Literal["flask", "flask-factory", "wsgi"]]] = []
    if "Flask" in text:
        candidates += [(m.group(1), "flask") for m in _FLASK_OBJECT.finditer(text)]
        candidates += [(m.group(1), "flask-factory") for m in _FACTORY.finditer(text)]
    candidates += [(m.group(1), "wsgi") for m in _WSGI.finditer(text)]
    if wanted is not None:
        candidates = [c for c in candidates if c[0] == wanted] or [(wanted, "wsgi")]
    if not candidates:
        return None
    attr, kind = candidates[0]
    database = _DATABASE_VARIABLE.search(text)
    return AppFound(
        path=relative,
        attr=attr,
        kind=kind,
        serve_command=bool(re.search(_SUBCOMMAND.format("serve"), text)) and "--port" in text,
        migrate_command=bool(re.search(_SUBCOMMAND.format("migrate"), text)),
        database_variable=database.group(1) if database else None,
    )


def find_migrations(root: Path, app: AppFound | None) -> Migrations | None:
    if app is not None and app.migrate_command:
        return Migrations("script", app.path)
    if (root / "migrations" / "alembic.ini").is_file() and app is not None:
        return Migrations("flask-migrate", Path("migrations"))
    if (root / "alembic.ini").is_file():
        return Migrations("alembic", Path("alembic.ini"))
    return None
