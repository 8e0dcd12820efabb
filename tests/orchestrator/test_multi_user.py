"""Several users, one machine: what one user's run leaves behind never breaks another's.

The shared places are the temp dir (e2e lock folder, junit staging), /dev/shm and /var/tmp
(embedded PostgreSQL's server dirs, template data dir, install copy) and the Docker daemon
(image tags by content hash). The slow tests run the browser smoke suite as root and as an
unprivileged user `ci-stack-other`, in both orders, on both providers. They need root (to
create that user and switch to it); elsewhere they skip and say why.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e import isolation
from e2e.isolation import LockDirNotOurs, StackLock, StackLockTimeout, private_dir
from orchestrator.cli import EXIT_NOT_EXECUTABLE, EXIT_USAGE
from orchestrator.embedded_postgres import clean_leftovers, find_leftovers
from orchestrator.embedded_postgres.leftovers import require_owned, temp_prefix
from orchestrator.errors import PrerequisiteMissing
from tests.fixtures.backend import REPO_ROOT

OTHER_USER = "ci-stack-other"
FOREIGN_UID = 54321  # a uid no process of this test runs as
DOCKER_SOCKET = Path("/var/run/docker.sock")
SMOKE = ("e2e/test_smoke.py", "-p", "no:cacheprovider")

# Our packages import, and the interpreter's own file is reachable (a sandbox may run a
# binary in a folder the user cannot enter, with the system's libpython and stdlib).
USABLE_PYTHON = (
    "import os, sys, orchestrator, playwright, pytest; "
    "sys.exit(not os.access(os.path.realpath(sys.executable), os.X_OK))"
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files to a uid")


# --- the e2e lock folder ---


def test_lock_folder_is_per_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    lock = StackLock("http://127.0.0.1:8000")
    folder = tmp_path / f"ci-stack-e2e-locks-{os.getuid()}"
    assert lock.gate_path.parent == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_lock_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "locks"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(LockDirNotOurs, match=r"not a folder only uid \d+ can write.*Fix: "):
        StackLock("http://127.0.0.1:8000", shared)


@needs_root
def test_lock_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "locks"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, FOREIGN_UID, FOREIGN_UID)
    with pytest.raises(LockDirNotOurs, match=f"owner uid {FOREIGN_UID}"):
        private_dir(theirs)


def test_same_user_same_stack_still_serialises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two lock objects (two pytest processes, say) of one user on one backend URL."""
    monkeypatch.setattr(isolation, "LOCK_WAIT_S", 0.3)
    first = StackLock("http://127.0.0.1:8000", tmp_path)
    second = StackLock("http://127.0.0.1:8000", tmp_path)
    other_stack = StackLock("http://127.0.0.1:8001", tmp_path)
    with first.exclusive():
        with pytest.raises(StackLockTimeout), second.shared():
            pass
        with other_stack.exclusive():
            pass  # another stack's lock is independent
    with second.shared():
        pass  # free again


# --- embedded PostgreSQL's dirs in shared roots ---


@needs_root
def test_leftovers_of_another_user_are_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same run id (run ids may repeat between users), another owner: not ours to remove."""
    run_id = "pytest-multi-user"
    theirs = tmp_path / f"{temp_prefix(run_id)}theirs"
    (theirs / "data").mkdir(parents=True, mode=0o700)
    theirs.chmod(0o700)
    os.chown(theirs, FOREIGN_UID, FOREIGN_UID)
    assert find_leftovers(run_id, tmp_path) == []
    assert theirs not in find_leftovers(base_dir=tmp_path)
    assert clean_leftovers(run_id, tmp_path) == []
    assert theirs.is_dir()


@needs_root
def test_cache_dir_another_user_made_is_refused(tmp_path: Path) -> None:
    """A predictable name in /var/tmp: a server must never start from someone else's files."""
    theirs = tmp_path / "ci-stack-pgdata-16.2-0123456789ab"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, FOREIGN_UID, FOREIGN_UID)
    with pytest.raises(PrerequisiteMissing, match=f"owner uid {FOREIGN_UID}.*Fix: remove it"):
        require_owned(theirs, os.geteuid(), "template data dir")


def test_cache_dir_others_can_write_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "ci-stack-pgdata-16.2-0123456789ab"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(PrerequisiteMissing, match="is not private"):
        require_owned(loose, os.geteuid(), "template data dir")
    loose.chmod(0o700)
    assert require_owned(loose, os.geteuid(), "template data dir") == loose


# --- the smoke suite as root and as another user, in both orders ---


@dataclass(frozen=True)
class OtherUser:
    """An unprivileged user, its own home, and a Python with our packages it can run."""

    name: str
    home: Path
    python: Path
    tools: Path | None = None  # a folder it can reach holding uv, first on its PATH

    def run(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        switch = ["setpriv", f"--reuid={self.name}", f"--regid={self.name}", "--init-groups"]
        if self.tools is not None:
            env = {**env, "PATH": f"{self.tools}:{env['PATH']}"}
        return _run([*switch, *args], env)


def _real_uv() -> Path | None:
    """The uv executable itself (not a pyenv shim script, which another user cannot follow)."""
    candidates: list[str | None] = [
        shutil.which("uv"),
        *(str(Path(prefix) / "bin" / "uv") for prefix in (sys.prefix, sys.base_prefix)),
    ]
    try:
        import uv

        candidates.insert(0, uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and _is_binary(Path(candidate)):
            return Path(candidate)
    return None


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _tools_for_others(base: Path) -> Path | None:
    """A copy of uv where another user can run it: the image's dependencies are installed
    with uv or pip, and a uv-made venv has no pip."""
    uv = _real_uv()
    if uv is None:
        return None
    tools = base / "tools"
    tools.mkdir()
    shutil.copy2(uv, tools / "uv")
    (tools / "uv").chmod(0o755)
    return tools


def _run(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


_NETWORK_SETTING = re.compile(r"CERT|CA_BUNDLE|PROXY|_TLS|^PIP_|^UV_", re.IGNORECASE)


def _base_env(home: Path, python: Path) -> dict[str, str]:
    """What both users' runs see: no STACK_* of an outer run, the shared system temp dir."""
    env = {
        "HOME": str(home),
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "LC_ALL": "C.UTF-8",
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    # How this machine reaches a package index (proxy, CA bundle, index settings): both users
    # install the image's dependencies the same way.
    env.update({k: v for k, v in os.environ.items() if _NETWORK_SETTING.search(k)})
    return env


def _ensure_user(name: str) -> pwd.struct_passwd:
    """`name`, created on first use (no password, no login shell, no home of its own)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        [
            "useradd",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)  # also when a parallel worker made it first
    except KeyError:
        pytest.fail(f"useradd {name} failed: {result.stderr.strip()}")


def _overlay_python(base: Path) -> Path | None:
    """A venv on a system Python of our version whose site-packages are ours (a symlink).

    For when our interpreter sits where other users can't reach it (pyenv under /root).
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if system is None:
        return None
    venv = base / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / version).mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(system)
    (venv / "lib" / version / "site-packages").symlink_to(sysconfig.get_paths()["purelib"])
    (venv / "pyvenv.cfg").write_text(
        f"home = {Path(system).parent}\ninclude-system-site-packages = false\n"
    )
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def other_user() -> Iterator[OtherUser]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a user and runs the suite as it")
    missing = [tool for tool in ("useradd", "setpriv") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} to create and switch to another user")
    entry = _ensure_user(OTHER_USER)
    scratch = Path(tempfile.mkdtemp(prefix="ci-stack-multi-user-"))
    try:
        scratch.chmod(0o755)
        home = scratch / "home"
        home.mkdir()
        os.chown(home, entry.pw_uid, entry.pw_gid)
        tools = _tools_for_others(scratch)
        probe = OtherUser(entry.pw_name, home, Path(sys.executable), tools)
        check = [str(probe.python), "-c", USABLE_PYTHON]
        env = _base_env(home, probe.python)
        if probe.run(check, env).returncode != 0:
            overlay = _overlay_python(scratch)
            if overlay is None:
                pytest.skip(
                    f"{OTHER_USER} cannot run {sys.executable}, and no system Python "
                    f"{sys.version_info.major}.{sys.version_info.minor} is there to borrow"
                )
            probe = OtherUser(entry.pw_name, home, overlay, tools)
            answer = probe.run([str(overlay), *check[1:]], _base_env(home, overlay))
            if answer.returncode != 0:
                pytest.skip(f"{OTHER_USER} cannot import our packages: {answer.stdout[-300:]}")
        if probe.run(["test", "-r", "pyproject.toml", "-a", "-w", str(home)], env).returncode:
            pytest.skip(f"{OTHER_USER} cannot read {REPO_ROOT} or write {home}")
        yield probe
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_command_in_a_folder_the_user_cannot_enter_is_one_line(other_user: OtherUser) -> None:
    """`run -- /root-only/tool` as another user: exit 126 and one line, before any stack."""
    private = Path(tempfile.mkdtemp(prefix="ci-stack-root-only-"))
    try:
        tool = private / "tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
        args = ["-m", "orchestrator", "run", "--provider", "local", "--", str(tool)]
        env = _base_env(other_user.home, other_user.python)
        result = other_user.run([str(other_user.python), *args], env)
    finally:
        shutil.rmtree(private)
    assert result.returncode == EXIT_NOT_EXECUTABLE, result.stdout
    assert result.stdout.splitlines() == [
        f"ci-stack: command not executable: {tool} (permission denied)"
    ]


@pytest.mark.docker
def test_wheel_cache_in_a_home_the_user_cannot_write_is_one_line(other_user: OtherUser) -> None:
    """A service user's home is often /nonexistent: say where the cache can go instead."""
    from orchestrator.providers.docker import docker_answers

    answers, why = docker_answers()
    if not answers:
        pytest.skip(why)
    _join_docker_group(other_user)
    artifacts = other_user.home / "artifacts-no-home"
    args = ["-m", "orchestrator", "run", "--provider", "docker", "--artifacts", str(artifacts)]
    env = _base_env(Path("/nonexistent"), other_user.python)
    result = other_user.run([str(other_user.python), *args, "--", "true"], env)
    assert result.returncode == EXIT_USAGE, result.stdout
    assert "Traceback" not in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "ci-stack: cannot create the image cache /nonexistent/.cache/ci-stack/site "
        "(Permission denied). Fix: set CI_STACK_CACHE_DIR (or XDG_CACHE_HOME, or HOME) to a "
        "folder you can write"
    )


def _join_docker_group(user: OtherUser) -> None:
    """The group owning the Docker socket, so `user` reaches the daemon as root does."""
    if "DOCKER_HOST" in os.environ or not DOCKER_SOCKET.exists():
        return
    group = DOCKER_SOCKET.stat().st_gid
    primary = pwd.getpwnam(user.name).pw_gid
    deadline = time.monotonic() + 30  # a parallel worker may hold the lock on /etc/group
    while group not in os.getgrouplist(user.name, primary):
        result = subprocess.run(
            ["usermod", "-aG", str(group), user.name], capture_output=True, text=True, check=False
        )
        if time.monotonic() > deadline:
            pytest.fail(f"usermod -aG {group} {user.name} failed: {result.stderr.strip()}")


def _smoke_run(
    who: str, user: OtherUser, provider: str, artifacts: Path
) -> subprocess.CompletedProcess[str]:
    args = ["-m", "orchestrator", "run", "--provider", provider, "--artifacts", str(artifacts)]
    if who == "root":
        python = Path(sys.executable)
        command = [str(python), *args, "--", str(python), "-m", "pytest", *SMOKE]
        return _run(command, _base_env(Path(pwd.getpwuid(0).pw_dir), python))
    command = [str(user.python), *args, "--", str(user.python), "-m", "pytest", *SMOKE]
    return user.run(command, _base_env(user.home, user.python))


def _both_green(
    order: tuple[str, str], user: OtherUser, provider: str, root_artifacts: Path
) -> list[str]:
    """Run the smoke suite as each of `order`; assert both pass; return their outputs."""
    outputs = []
    for index, who in enumerate(order):
        artifacts = (root_artifacts if who == "root" else user.home) / f"artifacts-{index}"
        result = _smoke_run(who, user, provider, artifacts)
        tail = "\n".join(result.stdout.splitlines()[-40:])
        assert result.returncode == 0, f"{provider} run as {who} (after {order[:index]}):\n{tail}"
        assert re.search(r"\b3 passed\b", result.stdout), tail
        assert (artifacts / "index.html").is_file()
        outputs.append(result.stdout)
    return outputs


ORDERS = [("root", OTHER_USER), (OTHER_USER, "root")]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("order", ORDERS, ids=["root-then-user", "user-then-root"])
def test_smoke_suite_local_as_root_and_another_user(
    order: tuple[str, str], other_user: OtherUser, tmp_path: Path
) -> None:
    _both_green(order, other_user, "local", tmp_path)


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.timeout(900)
@pytest.mark.parametrize("order", ORDERS, ids=["root-then-user", "user-then-root"])
def test_smoke_suite_docker_as_root_and_another_user(
    order: tuple[str, str], other_user: OtherUser, tmp_path: Path
) -> None:
    from orchestrator.providers.docker import docker_answers

    answers, why = docker_answers()
    if not answers:
        pytest.skip(why)
    _join_docker_group(other_user)
    first, second = _both_green(order, other_user, "docker", tmp_path)
    # Images are tagged by content: the second user reuses the first one's backend image,
    # though each built its dependencies into a cache of its own (~/.cache/ci-stack) — when
    # both run the same interpreter (a borrowed system Python byte-compiles differently).
    tag = re.search(r"backend: (?:cached|built) (ci-stack/backend:\w+)", first)
    assert tag, first
    if other_user.python == Path(sys.executable):
        assert f"backend: cached {tag.group(1)}" in second, second
    assert (other_user.home / ".cache" / "ci-stack" / "site").is_dir()
