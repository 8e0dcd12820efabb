"""An artifacts folder on a full disk (issue 16): no writer raises into pytest or the CLI,
what still fits is written (index.html first), and run.json, summary.md, index.html and the
CLI's last line say the evidence is incomplete and why; the exit code stays the tests'.

The disk is a 5 MB tmpfs mounted by the test (root only)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.disk import mounted_tmpfs
from tests.fixtures.orchestrator_cli import local_run_args, run_cli

FILL = textwrap.dedent(
    """
    import os
    from pathlib import Path

    def fill(folder):
        with open(Path(folder) / "filler.bin", "wb") as handle:
            while True:
                try:
                    handle.write(b"x" * 65536)
                    handle.flush()
                except OSError:
                    return
    """
)

FILLING_TESTS = FILL + textwrap.dedent(
    """
    def test_fills_the_disk():
        fill(os.environ["STACK_ARTIFACTS_DIR"])

    def test_fails_on_a_full_disk():
        assert 1 + 1 == 3, "a failure whose evidence has no room"

    def test_passes_on_a_full_disk():
        pass
    """
)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 5 MB tmpfs of this test's own, unmounted afterwards."""
    with mounted_tmpfs(tmp_path, "5m") as mount:
        yield mount


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def assert_no_crash(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "INTERNALERROR" not in stderr, stderr


def test_a_disk_that_fills_during_the_tests_keeps_the_verdict_and_says_what_is_missing(
    tmpfs: Path, tmp_path: Path
) -> None:
    tests = tmp_path / "suite" / "test_disk.py"
    tests.parent.mkdir()
    tests.write_text(FILLING_TESTS)
    folder = tmpfs / "artifacts"
    pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                  "no:playwright", "-p", "no:randomly", str(tests)]  # fmt: skip

    result = run_cli(*local_run_args(folder, *pytest_cmd), timeout=120)

    assert_no_crash(result.stderr)
    assert result.returncode == 1, result.stderr  # the tests' verdict: one failed
    assert "1 failed, 2 passed" in result.stdout
    line = last_line(result.stderr)
    assert line.startswith(f"artifacts  {folder}/  EVIDENCE INCOMPLETE (No space left on device")
    assert "results.jsonl" in line
    # index.html first (the room kept for it), then run.json and summary.md
    assert "<html" in (folder / "index.html").read_text().lower()
    run = json.loads((folder / "run.json").read_text())
    assert run["verdict"] == "failed" and run["command_status"] == 1
    assert run["incomplete"]["results.jsonl"].startswith("No space left on device")
    summary = (folder / "summary.md").read_text()
    assert "## Evidence incomplete" in summary
    assert "`results.jsonl`: No space left on device" in summary
    assert "Evidence incomplete" in (folder / "index.html").read_text()


def test_a_disk_full_from_the_start_fails_no_writer_and_says_so(tmpfs: Path) -> None:
    folder = tmpfs / "artifacts"
    folder.mkdir()  # an empty folder: the run may take it
    namespace: dict[str, object] = {}
    exec(FILL, namespace)  # our own text: the same filler the suite uses
    namespace["fill"](tmpfs)  # type: ignore[operator]

    result = run_cli(*local_run_args(folder, sys.executable, "-c", "print('ran')"), timeout=120)

    assert_no_crash(result.stderr)
    assert result.returncode == 0, result.stderr  # CMD's verdict: nothing failed but the disk
    assert "ran" in result.stdout
    line = last_line(result.stderr)
    assert line.startswith(f"artifacts  {folder}/  EVIDENCE INCOMPLETE (No space left on device")
    assert "index.html" in line


def test_a_file_that_cannot_be_redacted_on_a_full_disk_is_removed_not_left(tmpfs: Path) -> None:
    from orchestrator.artifacts.layout import Artifacts
    from orchestrator.redaction import Redactor

    secret = "s3cret-password-value"
    artifacts = Artifacts(tmpfs / "run", Redactor([secret]))
    artifacts.root.mkdir()
    leaky = artifacts.root / "junit.xml"  # written by another tool, not through the redactor
    leaky.write_text(f"<testsuite><system-out>{secret}</system-out></testsuite>\n" * 50)
    filler = os.open(tmpfs / "filler.bin", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk: no room is left for the rewrite
        while os.write(filler, b"x" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(filler)

    artifacts.redact_files()

    assert not leaky.exists()
    assert "could not be redacted" in artifacts.losses.describe()["junit.xml"]
    assert not any(secret in p.read_text(errors="ignore") for p in tmpfs.rglob("*") if p.is_file())
