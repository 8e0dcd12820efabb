"""EmbeddedPostgres against real binaries: no mocks, every test talks to a real server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from orchestrator.config import OrchestratorConfig
from orchestrator.embedded_postgres import (
    INSTALL_CACHE_ROOT,
    EmbeddedPostgres,
    clean_leftovers,
    default_base_dir,
    find_leftovers,
    resolve_bindir,
)
from orchestrator.errors import PrerequisiteMissing, StackStartError
from orchestrator.pgmq_extension import (
    bundled_pgmq_version,
    extension_files,
    install_pgmq_extension,
)
from orchestrator.proc import process_exists
from tests.fixtures.database import DatabaseFactory

DEBIAN_PG15 = Path("/usr/lib/postgresql/15/bin")


def _process_gone(pid: int) -> bool:
    return not process_exists(pid)


# --- the shared session server -------------------------------------------------------------


def test_accepts_tcp_and_unix_socket_connections(embedded_pg: EmbeddedPostgres) -> None:
    with psycopg.connect(embedded_pg.url()) as conn:
        assert conn.execute("SELECT inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)
    socket_dir, port = str(embedded_pg.socket_dir), embedded_pg.port
    with psycopg.connect(host=socket_dir, port=port, user="postgres", dbname="postgres") as conn:
        assert conn.execute("SELECT inet_server_addr()").fetchone() == (None,)
    assert embedded_pg.alive()
    assert embedded_pg.started_seconds > 0
    assert embedded_pg.log_path.is_file()


def test_pgmq_extension_round_trips(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pgmq")
        row = conn.execute(
            "SELECT extversion, extconfig IS NOT NULL FROM pg_extension WHERE extname = 'pgmq'"
        ).fetchone()
        assert row == (bundled_pgmq_version(), True)  # a real extension: its tables are dumped
        conn.execute("SELECT pgmq.create('q')")
        sent = conn.execute("""SELECT pgmq.send('q', '{"hello": "world"}')""").fetchone()
        assert sent is not None
        read = conn.execute("SELECT msg_id, message FROM pgmq.read('q', 30, 1)").fetchall()
        assert read == [(sent[0], {"hello": "world"})]


def test_password_is_enforced_over_tcp(embedded_pg: EmbeddedPostgres) -> None:
    assert embedded_pg.password and f":{embedded_pg.password}@" in embedded_pg.url()
    wrong = embedded_pg.url().replace(embedded_pg.password, "wrong-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)


def test_create_database_from_template(embedded_pg: EmbeddedPostgres) -> None:
    template_url = embedded_pg.create_database("tpl_embedded_test")
    try:
        with psycopg.connect(template_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE seeded (v int); INSERT INTO seeded VALUES (42)")
        copy_url = embedded_pg.create_database("copy_embedded_test", template="tpl_embedded_test")
        conn = psycopg.connect(copy_url, autocommit=True)
        assert conn.execute("SELECT v FROM seeded").fetchall() == [(42,)]
        embedded_pg.drop_database("copy_embedded_test")  # terminates `conn` first
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
    finally:
        embedded_pg.drop_database("tpl_embedded_test")
    with embedded_pg.connect() as admin:
        names = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE '%embedded_test'")
        assert names.fetchall() == []


def test_make_database_factory_copies_templates(make_database: DatabaseFactory) -> None:
    template_url = make_database()
    with psycopg.connect(template_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pgmq")
        conn.execute("SELECT pgmq.create('seeded')")
    template_name = template_url.rsplit("/", 1)[1]
    copy_url = make_database(template=template_name)
    with psycopg.connect(copy_url) as conn:
        assert conn.execute("SELECT queue_name FROM pgmq.list_queues()").fetchall() == [("seeded",)]


def test_database_factory_drops_what_it_made(embedded_pg: EmbeddedPostgres) -> None:
    factory = DatabaseFactory(embedded_pg)
    names = {factory().rsplit("/", 1)[1] for _ in range(2)}
    factory.close()
    with embedded_pg.connect() as admin:
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [list(names)]
        )
        assert left.fetchall() == []


def test_two_servers_run_at_once(embedded_pg: EmbeddedPostgres) -> None:
    with EmbeddedPostgres(run_id="pytest-second") as second:
        assert second.port != embedded_pg.port
        assert second.socket_dir != embedded_pg.socket_dir
        for server in (embedded_pg, second):
            with psycopg.connect(server.url()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


# --- servers of their own --------------------------------------------------------------------


def test_stop_removes_temp_dir_and_process() -> None:
    server = EmbeddedPostgres(run_id="pytest-stop")
    with server:
        tmp, pid = server.socket_dir, server.pid
        assert tmp.name.startswith("ci-stack-pytest-stop-pg-")
        assert server.url() == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        with psycopg.connect(server.url()) as conn:  # no password: host auth is trust
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert pid is not None and _process_gone(pid)
    assert not tmp.exists()
    assert not server.alive()
    server.stop()  # idempotent


def test_missing_binaries_name_what_was_searched(tmp_path: Path) -> None:
    server = EmbeddedPostgres(bindir=tmp_path)  # nothing happens at construction
    with pytest.raises(PrerequisiteMissing) as caught:
        server.start()
    message = str(caught.value)
    assert str(tmp_path) in message
    assert "pip install pgserver==0.1.4" in message
    assert "STACK_PG_BINDIR" in caught.value.fix


def test_server_that_exits_during_start_fails_at_once_with_its_log() -> None:
    server = EmbeddedPostgres(run_id="pytest-bad", settings={"shared_buffers": "lots"})
    with pytest.raises(StackStartError) as caught, server:
        pytest.fail("a server with a bad setting started")
    assert caught.value.exit_code == 1
    assert 'invalid value for parameter "shared_buffers"' in caught.value.log_tail
    assert not find_leftovers("pytest-bad")  # the failed start cleaned up after itself


def test_clean_leftovers_removes_dir_of_killed_server() -> None:
    server = EmbeddedPostgres(run_id="pytest-killed").start()
    tmp, pid = server.socket_dir, server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # as if the whole run had been killed
    assert find_leftovers("pytest-killed") == [tmp]
    removed = clean_leftovers("pytest-killed")
    assert len(removed) == 1 and str(tmp) in removed[0]
    assert not tmp.exists()
    server.stop()  # reaps the postmaster; the dir is already gone
    assert _process_gone(pid)


def test_clean_leftovers_kills_server_orphaned_by_a_killed_run() -> None:
    # A run killed outright: its python process dies, its postmaster keeps running.
    script = (
        "import sys; from orchestrator.embedded_postgres import EmbeddedPostgres; "
        "s = EmbeddedPostgres(run_id='pytest-orphan').start(); "
        "print(s.pid, s.socket_dir, flush=True); sys.stdin.read()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        pid_text, tmp_text = owner.stdout.readline().split()
        owner.kill()
    postmaster, tmp = int(pid_text), Path(tmp_text)
    assert not _process_gone(postmaster)
    assert tmp in find_leftovers()  # its owner is gone, so it counts without a run id
    removed = clean_leftovers("pytest-orphan")
    assert len(removed) == 1 and str(tmp) in removed[0] and str(postmaster) in removed[0]
    assert _process_gone(postmaster)
    assert not tmp.exists()


def test_clean_leftovers_without_run_id_spares_live_sessions(embedded_pg: EmbeddedPostgres) -> None:
    clean_leftovers()
    assert embedded_pg.socket_dir.exists()
    assert embedded_pg.alive()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to the postgres user")
def test_install_unreachable_for_run_user_is_copied_to_cache(tmp_path: Path) -> None:
    # pytest's tmp_path lives in a 0700 root-owned dir: the postgres user cannot reach it.
    # Hard-link the wheel's layout there (pginstall plus the pgserver.libs its rpath needs).
    pginstall = EmbeddedPostgres().bindir.parent
    site = tmp_path / "site-packages"
    for part in (Path("pgserver") / "pginstall", Path("pgserver.libs")):
        _link_tree(pginstall.parent.parent / part, site / part)
    with EmbeddedPostgres(bindir=site / "pgserver/pginstall/bin", run_id="pytest-hidden") as pg:
        assert pg.bindir.is_relative_to(INSTALL_CACHE_ROOT)
        with psycopg.connect(pg.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert tmp_path.parent.stat().st_mode & 0o077 == 0  # never loosened


def _link_tree(source: Path, target: Path) -> None:
    try:
        shutil.copytree(source, target, symlinks=True, copy_function=os.link)
    except OSError:  # another filesystem: no hard links
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)


@pytest.mark.skipif(not (DEBIAN_PG15 / "initdb").exists(), reason="Debian's PostgreSQL 15 absent")
@pytest.mark.skipif(os.geteuid() != 0, reason="writing into /usr/share needs root")
def test_system_binaries_via_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_PG_BINDIR", str(DEBIAN_PG15))
    bindir = OrchestratorConfig.load().pg_bindir  # the settings table reads the variable
    with EmbeddedPostgres(password="pw", run_id="pytest-pg15", bindir=bindir) as server:
        assert re.fullmatch(r"15\.\d+", server.version())
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pgmq")
            assert conn.execute("SELECT pgmq.create('q')").fetchone() is not None


def test_the_server_reads_no_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """STACK_PG_* are rows of the settings table; the server takes them as arguments."""
    monkeypatch.setenv("STACK_PG_BINDIR", str(tmp_path / "no-such-bindir"))
    monkeypatch.setenv("STACK_PG_TMPDIR", str(tmp_path / "no-such-tmpdir"))

    assert resolve_bindir() != tmp_path / "no-such-bindir"  # pgserver's, as with no setting
    assert default_base_dir() != tmp_path / "no-such-tmpdir"
    assert default_base_dir(tmp_path) == tmp_path


# --- the extension files ---------------------------------------------------------------------


def test_extension_install_is_idempotent(tmp_path: Path) -> None:
    written = install_pgmq_extension(tmp_path)
    version = bundled_pgmq_version()
    assert {p.name for p in written} == {"pgmq.control", f"pgmq--{version}.sql"}
    assert f"default_version = '{version}'" in (tmp_path / "pgmq.control").read_text()
    assert (tmp_path / "pgmq.control").stat().st_mode & 0o444 == 0o444
    assert install_pgmq_extension(tmp_path) == []
    assert set(extension_files()) == {p.name for p in written}


def test_extension_install_into_missing_dir_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteMissing, match="does not exist"):
        install_pgmq_extension(tmp_path / "nope")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs sysfs")
def test_extension_install_into_unwritable_dir_says_how_to_fix() -> None:
    # sysfs refuses new files even to root: a directory nobody can write.
    with pytest.raises(PrerequisiteMissing) as caught:
        install_pgmq_extension(Path("/sys/kernel"))
    assert "/sys/kernel" in caught.value.what
    assert "run as root" in caught.value.fix
