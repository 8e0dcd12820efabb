"""`python -m orchestrator report`: its options as a real CLI subprocess, the server by real
HTTP requests. It serves its folder and nothing outside it (issue 16)."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.report_server import ReportServer
from tests.fixtures.orchestrator_cli import run_cli

SECRET = "root:x:0:0:this must never be served\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ReportServer, Path]]:
    """A report folder with links leading out of it (and one inside), being served."""
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET)
    folder = tmp_path / "run"
    (folder / "tests" / "t1").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>report</title>")
    (folder / "tests" / "t1" / "trace.zip").write_bytes(b"PK")
    (folder / "etc-link").symlink_to(outside)  # a folder outside, absolute
    (folder / "passwd-link").symlink_to(outside / "passwd")  # a file outside
    (folder / "tests" / "t1" / "up").symlink_to(Path("..") / ".." / ".." / "etc")  # relative
    (folder / "latest").symlink_to(Path("tests") / "t1")  # inside: served
    with ReportServer(folder) as server:
        yield server, folder


def get(server: ReportServer, path: str, method: str = "GET") -> tuple[int, bytes]:
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    ["/etc-link/passwd", "/etc-link/", "/passwd-link", "/tests/t1/up/passwd", "/etc-link/passwd?x"],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_link_leading_out_of_the_folder_is_not_followed(
    served: tuple[ReportServer, Path], path: str, method: str
) -> None:
    server, _ = served

    status, body = get(server, path, method)

    assert status in (403, 404), (status, body)
    assert b"this must never be served" not in body


def test_the_folder_itself_and_links_inside_it_are_served(
    served: tuple[ReportServer, Path],
) -> None:
    server, _ = served

    assert get(server, "/index.html")[0] == 200
    assert get(server, "/latest/trace.zip") == (200, b"PK")
    status, listing = get(server, "/tests/")
    assert status == 200 and b"t1/" in listing


def test_a_path_climbing_out_of_the_folder_is_not_served(
    served: tuple[ReportServer, Path],
) -> None:
    server, _ = served

    status, body = get(server, "/../etc/passwd")

    assert status == 404 and b"this must never be served" not in body


@pytest.fixture
def report_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>report</title>")
    return folder


@pytest.mark.parametrize("port", ["99999", "-5", "65536", "eighty"])
def test_a_bad_port_is_one_line(report_folder: Path, port: str) -> None:
    result = run_cli("report", "--no-open", "--port", port, str(report_folder), timeout=30)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"argument --port: {port!r} is not a port; give 1 to 65535, or 0 for a free one" in line


def test_a_port_in_use_is_one_line_naming_it_and_the_fix(report_folder: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_cli("report", "--no-open", "--port", str(port), str(report_folder), timeout=30)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"port {port} on 127.0.0.1 is in use" in line
    assert "Fix: pass another --port, or leave --port out for a free one" in line


def _project(tmp_path: Path, artifacts: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f'[tool.ci-stack]\nartifacts = "{artifacts}"\n')
    return tmp_path


@pytest.mark.parametrize("where", ["pyproject", "env"])
def test_without_a_folder_report_looks_where_run_writes(tmp_path: Path, where: str) -> None:
    """No DIR: the artifacts setting as `run` resolves it (env > [tool.ci-stack] > default),
    not a default of its own."""
    project = _project(tmp_path, "from-pyproject")
    env = {"STACK_ARTIFACTS": "from-env"} if where == "env" else {"STACK_ARTIFACTS": ""}
    expected = "from-env" if where == "env" else "from-pyproject"

    missing = run_cli("report", "--no-open", env=env, cwd=project, timeout=30)

    assert missing.returncode == 2
    [line] = missing.stderr.splitlines()
    assert line.startswith(f"ci-stack report: {expected} has no index.html. Fix:"), line

    (project / expected).mkdir()
    (project / expected / "index.html").write_text("<!doctype html><title>report</title>")
    with socket.socket() as taken:  # the folder is found: the next check is the port's
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        found = run_cli("report", "--no-open", "--port", port, env=env, cwd=project, timeout=30)

    assert found.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in found.stderr
