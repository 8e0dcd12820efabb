"""Zips are artifacts too: a Playwright trace of a page that shows a secret holds none once
the evidence plugin has seen the test end, and still opens in Playwright's trace viewer."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from playwright.sync_api import Browser, expect

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import Artifacts, RunInfo, finish_run
from orchestrator.artifacts.zip_redaction import redact_zip
from orchestrator.contract import RUN_ENV
from orchestrator.redaction import MASK, Redactor
from orchestrator.report_server import ReportServer
from tests.fixtures.chromium import launched_chromium

pytest_plugins = ["pytester"]

PASSWORD = "pw-Secret/42+x"
DSN = f"postgresql://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:5432/app"
FORMS = {PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD)}
NODEID = "test_page.py::test_shows_the_database_url[chromium]"  # pytest-playwright's

# No conftest: the browser plugin (orchestrator.pytest_browser) has Playwright write into the
# test's evidence folder. --base-url: the page needs no stack.
UNUSED_BASE_URL = "http://127.0.0.1:9"
PAGE_TEST = f"""
import os

def test_shows_the_database_url(page):
    url = os.environ["STACK_DATABASE_URL"]
    password = {PASSWORD!r}
    page.set_content(
        f"<p id=dsn>{{url}}</p><button onclick=\\"this.textContent='pressed'\\">press me</button>"
    )
    page.evaluate("secret => console.log('the password is', secret)", password)
    page.get_by_role("button", name="press me").click()
    assert page.locator("#dsn").text_content() == "nothing to see", "the page showed it"
"""


def _members_with_a_secret(trace: Path) -> list[str]:
    with zipfile.ZipFile(trace) as archive:
        return [
            info.filename
            for info in archive.infolist()
            if any(form.encode() in archive.read(info) for form in FORMS)
        ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.mark.slow
def test_a_failed_browser_tests_trace_is_redacted_when_the_test_ends(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, browser: Browser
) -> None:
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(folder))
    monkeypatch.setenv(RUN_ENV, "run-trace")  # as under `orchestrator run`: it finishes later
    monkeypatch.setenv("STACK_DATABASE_URL", DSN)
    monkeypatch.delenv("STACK_BACKEND_URL", raising=False)
    pytester.makepyfile(test_page=PAGE_TEST)

    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--base-url", UNUSED_BASE_URL, timeout=180
    )

    result.assert_outcomes(failed=1)
    trace = folder / "tests" / util.test_slug(NODEID) / "trace.zip"
    assert trace.is_file(), sorted(p.name for p in folder.rglob("*"))
    assert not (folder / "index.html").exists()  # not finished: redacted by the plugin itself
    assert _members_with_a_secret(trace) == []
    with zipfile.ZipFile(trace) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert {"trace.trace", "trace.network"} <= set(names)
        events = [json.loads(line) for line in archive.read("trace.trace").splitlines() if line]
    assert any(MASK in json.dumps(event) for event in events)  # redacted, not dropped
    assert any(event.get("type") == "console" for event in events)

    # The rewritten trace still opens in Playwright's trace viewer, served with the report.
    finish_run(Artifacts(folder, Redactor([PASSWORD])), RunInfo("run-trace", "local", "failed"))
    context = browser.new_context()
    try:
        with ReportServer(folder) as server:
            page = context.new_page()
            page.goto(server.url + "index.html")
            with context.expect_page() as opened:
                page.locator("a.trace").click()
            expect(opened.value.get_by_text("press me").first).to_be_visible(timeout=30_000)
    finally:
        context.close()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            compression = zipfile.ZIP_STORED if name.endswith(".jpeg") else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, (2024, 5, 6, 7, 8, 10)), data, compression)


JPEG = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(range(256)) * 4  # not UTF-8


def test_redact_zip_rewrites_text_members_and_keeps_the_rest(tmp_path: Path) -> None:
    trace = tmp_path / "trace.zip"
    _zip(trace, {
        "trace.trace": json.dumps({"type": "console", "text": f"pw {PASSWORD}"}).encode() + b"\n",
        "trace.network": b"",
        "resources/aa.html": f"<p>{DSN}</p>".encode(),
        "screencast/page-1.jpeg": JPEG,
        "resources/bb.bin": JPEG + PASSWORD.encode() + JPEG,  # binary with the secret inside
    })  # fmt: skip
    trace.chmod(0o640)
    before = zipfile.ZipFile(trace).infolist()

    assert redact_zip(trace, Redactor([PASSWORD])) is True

    assert _members_with_a_secret(trace) == []
    with zipfile.ZipFile(trace) as archive:
        after = archive.infolist()
        assert [(i.filename, i.compress_type, i.date_time) for i in after] == [
            (i.filename, i.compress_type, i.date_time) for i in before
        ]
        assert archive.read("screencast/page-1.jpeg") == JPEG  # untouched
        assert json.loads(archive.read("trace.trace"))["text"] == f"pw {MASK}"
        assert (
            archive.read("resources/aa.html")
            == f"<p>{DSN}</p>".replace(quote(PASSWORD, safe=""), MASK).encode()
        )
        assert archive.read("resources/bb.bin") == JPEG + MASK.encode() + JPEG
    assert oct(trace.stat().st_mode & 0o777) == "0o640"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.zip"]  # no temp file left


def test_a_zip_without_a_secret_is_not_rewritten(tmp_path: Path) -> None:
    trace = tmp_path / "trace.zip"
    _zip(trace, {"trace.trace": b"{}\n", "screencast/page-1.jpeg": JPEG})
    stamp = trace.stat().st_mtime_ns, trace.stat().st_ino

    assert redact_zip(trace, Redactor([PASSWORD])) is False
    assert (trace.stat().st_mtime_ns, trace.stat().st_ino) == stamp


def test_finishing_a_run_redacts_zips_anywhere_in_the_folder(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path / "run", Redactor([PASSWORD])).create()
    nested = artifacts.tests_dir / "some-test" / "attempt-2" / "trace.zip"
    nested.parent.mkdir(parents=True)
    _zip(nested, {"trace.trace": f"{PASSWORD}\n".encode()})
    broken = artifacts.tests_dir / "some-test" / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")

    changed = artifacts.redact_files()

    assert changed == [nested]
    assert _members_with_a_secret(nested) == []
    assert broken.read_bytes() == b"PK\x03\x04 not really a zip"
