"""Install PGMQ as a real PostgreSQL extension from the SQL bundled in the `pgmq` wheel.

The wheel ships upstream's extension script (`pgmq/sql/pgmq.sql`, the same file as
`pgmq-extension/sql/pgmq.sql` upstream) and its version (`pgmq/sql/VERSION`). Writing that
script as `pgmq--<version>.sql` next to a `pgmq.control` makes `CREATE EXTENSION pgmq` work
on any server whose extension directory we can write. The Docker image build reuses
`extension_files()` to put the same two files into its context.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from importlib.util import find_spec
from pathlib import Path

from orchestrator.errors import PrerequisiteMissing

EXTENSION_NAME = "pgmq"
_PGMQ_FIX = "pip install pgmq==1.1.4 (it bundles the PGMQ 1.13.0 SQL)"
_WRITE_FIX = (
    "run as root or as the directory's owner (once: the files stay for every user), or use "
    "the pgserver binaries (pip install pgserver==0.1.4 and drop --pg-bindir / "
    "STACK_PG_BINDIR) in an environment of your own"
)

# Upstream's pgmq.control, minus `module_pathname`: the bundled script is pure SQL.
_CONTROL_TEMPLATE = """\
comment = 'A lightweight message queue. Like AWS SQS and RSMQ but on Postgres.'
default_version = '{version}'
schema = 'pgmq'
relocatable = false
superuser = false
"""

# The usual guard of extension scripts: psql users get told to use CREATE EXTENSION.
_SCRIPT_GUARD = '\\echo Use "CREATE EXTENSION pgmq" to load this file. \\quit\n'


def bundled_pgmq_files() -> tuple[str, str]:
    """The bundled install script and its version, as `(sql_text, version)`."""
    # find_spec locates the package without importing it (its client pulls in a lot).
    spec = find_spec("pgmq")
    if spec is None or not spec.submodule_search_locations:
        raise PrerequisiteMissing("the pgmq wheel is not installed", _PGMQ_FIX)
    sql_dir = Path(next(iter(spec.submodule_search_locations))) / "sql"
    try:
        sql_text = (sql_dir / "pgmq.sql").read_text(encoding="utf-8")
        version_text = (sql_dir / "VERSION").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        what = f"PGMQ SQL not found in the pgmq wheel ({exc.filename})"
        raise PrerequisiteMissing(what, _PGMQ_FIX) from exc
    versions = [line.strip() for line in version_text.splitlines()]
    versions = [line for line in versions if line and not line.startswith("#")]
    if not versions or not sql_text.strip():
        raise PrerequisiteMissing("the pgmq wheel's bundled PGMQ SQL is empty", _PGMQ_FIX)
    return sql_text, versions[0]


def bundled_pgmq_version() -> str:
    """The PGMQ extension version the `pgmq` wheel bundles (e.g. "1.13.0")."""
    return bundled_pgmq_files()[1]


def extension_script(sql_text: str) -> str:
    """Adapt the bundled script for CREATE EXTENSION.

    Upstream already writes it to run both ways: the schema comes from the control file
    (its own `CREATE SCHEMA` is skipped when a `pgmq` extension row exists) and it calls
    `pg_extension_config_dump` only inside an extension. So the only change is the guard.
    """
    if sql_text.startswith(_SCRIPT_GUARD):
        return sql_text
    return _SCRIPT_GUARD + sql_text


def extension_files() -> dict[str, str]:
    """File name -> content of the two files an extension directory needs."""
    sql_text, version = bundled_pgmq_files()
    return {
        f"{EXTENSION_NAME}.control": _CONTROL_TEMPLATE.format(version=version),
        f"{EXTENSION_NAME}--{version}.sql": extension_script(sql_text),
    }


def extension_dir(bindir: Path) -> Path:
    """`<sharedir>/extension` of the PostgreSQL install whose binaries are in `bindir`."""
    pg_config = bindir / "pg_config"
    try:
        result = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PrerequisiteMissing(
            f"cannot ask {pg_config} for the share directory ({exc})",
            "point --pg-bindir / STACK_PG_BINDIR at a complete PostgreSQL bin directory",
        ) from exc
    return Path(result.stdout.strip()) / "extension"


def install_pgmq_extension(ext_dir: Path) -> list[Path]:
    """Write pgmq.control and pgmq--<version>.sql into `ext_dir`; return what was written.

    Idempotent: files already there with the same content are left alone.
    """
    if not ext_dir.is_dir():
        raise PrerequisiteMissing(
            f"PostgreSQL extension directory {ext_dir} does not exist",
            "point --pg-bindir / STACK_PG_BINDIR at a complete PostgreSQL install",
        )
    written: list[Path] = []
    for name, text in extension_files().items():
        target = ext_dir / name
        data = text.encode("utf-8")
        if target.is_file() and target.read_bytes() == data:
            continue
        try:
            _write_atomically(target, data)
        except OSError as exc:
            raise PrerequisiteMissing(
                f"cannot write the PGMQ extension files into {ext_dir} ({exc.strerror})",
                _WRITE_FIX,
            ) from exc
        written.append(target)
    return written


def install_for_bindir(bindir: Path) -> Path:
    """Install PGMQ into the extension directory of the install at `bindir`; return that dir."""
    ext_dir = extension_dir(bindir)
    install_pgmq_extension(ext_dir)
    return ext_dir


def _write_atomically(target: Path, data: bytes) -> None:
    # Temp file in the same dir, then rename: a concurrent reader sees old or new, never half.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o644)  # the server may run as another user
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
