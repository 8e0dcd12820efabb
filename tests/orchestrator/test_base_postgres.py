"""The offline base's PostgreSQL: the pgserver wheel's build, copied as Debian lays it out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.images.base_postgres import BundledPostgres, bundled_postgres
from orchestrator.images.bootstrap import rootfs_archive


@pytest.fixture(scope="module")
def bundled() -> BundledPostgres:
    found = bundled_postgres()
    if found is None:
        pytest.skip("the pgserver wheel is not installed here")
    return found


def test_the_copy_runs_from_its_new_place_with_its_own_libpq(
    bundled: BundledPostgres, tmp_path: Path
) -> None:
    bundled.copy_into(tmp_path)
    home = tmp_path / "usr/lib/postgresql" / bundled.major
    assert bundled.major == "16"

    # Relocated: pg_config reports the new place, not the wheel's.
    sharedir = subprocess.run(
        [str(home / "bin/pg_config"), "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(sharedir).resolve() == (home / "share/postgresql").resolve()
    # psql needs the wheel's libpq: found through its rpath from /usr/lib/<pkg>.libs.
    assert bundled.libs is not None
    assert (tmp_path / "usr/lib" / bundled.libs.name).is_dir()
    psql = subprocess.run(
        [str(home / "bin/psql"), "--version"], capture_output=True, text=True, check=False
    )
    assert psql.returncode == 0, psql.stderr
    assert f"(PostgreSQL) {bundled.install.version}" in psql.stdout


def test_the_copy_leaves_out_what_a_server_does_not_need(
    bundled: BundledPostgres, tmp_path: Path
) -> None:
    bundled.copy_into(tmp_path)
    home = tmp_path / "usr/lib/postgresql" / bundled.major
    assert (home / "bin/postgres").is_file() and (home / "bin/initdb").is_file()
    assert (home / "share/postgresql/postgres.bki").is_file()
    assert not (home / "include").exists()
    assert not list(home.rglob("*.a"))
    # PGMQ is the database image's own (the local provider may have put its files here).
    assert not list(home.rglob("pgmq*"))


def test_the_root_fs_cache_key_follows_the_postgresql_it_carries(
    bundled: BundledPostgres, tmp_path: Path
) -> None:
    plain = rootfs_archive("bookworm", "http://m", None, tmp_path)
    carried = rootfs_archive("bookworm", "http://m", None, tmp_path, bundled)
    assert plain != carried
    assert carried == rootfs_archive("bookworm", "http://m", None, tmp_path, bundled)
    assert bundled.identity().startswith(f"{bundled.install.version}-")
