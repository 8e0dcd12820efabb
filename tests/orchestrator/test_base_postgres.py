"""The offline base's PostgreSQL: the pgserver wheel's build, copied as Debian lays it out."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from orchestrator.images import bootstrap
from orchestrator.images.base_postgres import BundledPostgres, bundled_postgres
from orchestrator.images.bootstrap import bootstrap_tool, rootfs_archive, rootfs_command


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
    server = subprocess.run(
        [str(home / "bin/postgres"), "--version"], capture_output=True, text=True, check=True
    )
    assert bundled.install.version in server.stdout
    # A server-side library two levels deeper finds the same libpq.
    module = home / "lib/postgresql/libpqwalreceiver.so"
    linked = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=True)
    assert "not found" not in linked.stdout
    libpq = next(line for line in linked.stdout.splitlines() if "libpq" in line)
    found = Path(libpq.split("=> ", 1)[1].split(" (", 1)[0]).resolve()
    assert found.parent == (tmp_path / "usr/lib" / bundled.libs.name).resolve()


def test_the_copy_is_usable_by_any_user_whatever_the_venvs_modes(
    bundled: BundledPostgres, tmp_path: Path
) -> None:
    bundled.copy_into(tmp_path)
    for path in (tmp_path / "usr/lib").rglob("*"):
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & stat.S_IROTH, path
        if path.is_dir() or mode & stat.S_IXUSR:
            assert mode & stat.S_IXOTH, path


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


def test_mmdebstrap_is_preferred_then_debootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tools(*names: str) -> None:
        folder = tmp_path / "-".join(names or ("none",))
        folder.mkdir()
        for name in names:
            (folder / name).write_text("#!/bin/sh\n")
            (folder / name).chmod(0o755)
        monkeypatch.setenv("PATH", str(folder))

    tools("debootstrap", "mmdebstrap")
    assert bootstrap_tool() == "mmdebstrap"
    tools("debootstrap")
    assert bootstrap_tool() == "debootstrap"
    tools()
    assert bootstrap_tool() is None


def test_the_mmdebstrap_command_leaves_docs_out_and_takes_current_packages() -> None:
    command = rootfs_command(
        "mmdebstrap", "bookworm", Path("/r"), "http://m/debian", "http://m/debian-security"
    )
    assert command[:2] == ["mmdebstrap", "--variant=minbase"]
    # The `option=value` form: mmdebstrap applies only that one to its essential packages.
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in command
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in command
    if Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr").is_dir():
        assert "--hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr" in command
    assert command[-5:] == [
        "bookworm",
        "/r",
        "http://m/debian",
        "deb http://m/debian bookworm-updates main",
        "deb http://m/debian-security bookworm-security main",
    ]
    assert rootfs_command("debootstrap", "bookworm", Path("/r"), "http://m/debian", None) == [
        "debootstrap",
        "--variant=minbase",
        "bookworm",
        "/r",
        "http://m/debian",
    ]


def test_the_kept_root_fs_is_per_tool(bundled: BundledPostgres, tmp_path: Path) -> None:
    by_tool = {
        tool: rootfs_archive("bookworm", "http://m", None, tmp_path, bundled, tool)
        for tool in ("mmdebstrap", "debootstrap")
    }
    assert by_tool["mmdebstrap"] != by_tool["debootstrap"]


@pytest.mark.skipif(os.geteuid() != 0, reason="as a user the answer is 'needs root' first")
def test_without_the_wheel_the_bootstrap_refuses_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if bootstrap_tool() is None:
        pytest.skip("neither mmdebstrap nor debootstrap is installed")
    monkeypatch.setattr(bootstrap, "bundled_postgres", lambda: None)
    why = bootstrap.bootstrap_unavailable()
    assert why is not None
    assert "pgserver" in why.what and "PostgreSQL 16" in why.what
    assert "\n" not in str(why)
