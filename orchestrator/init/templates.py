"""The files `ci-stack init` writes, as text: profile, noxfile, workflow, pyproject table,
first browser test. Each `render_*` returns the whole file."""

from __future__ import annotations

import textwrap

from orchestrator.config import DEFAULT_HISTORY
from orchestrator.init.detect import AppFound, Migrations

__all__ = [
    "NOX_LINES",
    "render_first_test",
    "render_noxfile",
    "render_profile",
    "render_pyproject_table",
    "render_workflow",
]

NOX_LINES = (
    "from orchestrator.nox_sessions import add_sessions  # ci-stack's e2e and up sessions\n"
    "add_sessions()\n"
)
WEB_PORT = 8000
LINE = 88  # the longest line of a file written (ruff's and black's default)


def _tuple(items: list[str], indent: int = 16) -> str:
    """A Python tuple of `items` (source text) fitting LINE after `command=`."""
    one_line = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if indent + len("command=") + len(one_line) + 1 <= LINE:
        return one_line
    lines, line = [], ""
    for item in items:
        if line and indent + 4 + len(line) + len(item) + 2 > LINE:
            lines.append(line.rstrip())
            line = ""
        line += item + ", "
    lines.append(line.rstrip())
    inner = "".join(f"\n{' ' * (indent + 4)}{text}" for text in lines)
    return f"({inner}\n{' ' * indent})"


def _web_command(app: AppFound) -> list[str]:
    if app.serve_command:
        return ['"{python}"', f'str(HERE / "{app.path.as_posix()}")', '"serve"', '"--host"',
                '"{host}"', '"--port"', '"{port}"']  # fmt: skip
    if app.kind in ("flask", "flask-factory"):
        return ['"{python}"', '"-m"', '"flask"', '"--app"', f'"{app.reference}"', '"run"',
                '"--host"', '"{host}"', '"--port"', '"{port}"', '"--no-reload"']  # fmt: skip
    return ['"{python}"', '"-m"', '"waitress"', '"--host={host}"', '"--port={port}"',
            f'"{app.reference}"']  # fmt: skip


def _migrate_command(app: AppFound | None, migrations: Migrations) -> list[str]:
    if migrations.tool == "script":
        return ['"{python}"', f'str(HERE / "{migrations.path.as_posix()}")', '"migrate"']
    if migrations.tool == "flask-migrate" and app is not None:
        return ['"{python}"', '"-m"', '"flask"', '"--app"', f'"{app.reference}"', '"db"',
                '"upgrade"']  # fmt: skip
    ini = f'str(HERE / "{migrations.path.as_posix()}")'
    return ['"{python}"', '"-m"', '"alembic"', '"-c"', ini, '"upgrade"', '"head"']


_HEADER = '''\
"""ci-stack's profile for {name}: the services of its test stack.

Written by `ci-stack init`. `ci-stack run -- pytest e2e` starts a PostgreSQL database
and these services, waits until each is ready, runs pytest against them, then stops
them. Commands and environments may use placeholders, filled per service:
{{python}}, {{host}}, {{port}}, {{database_url}}, {{instance}}.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator import AppProfile, ExitProbe, HttpProbe, ServiceSpec
from orchestrator.config import OrchestratorConfig
from orchestrator.spec import DatabaseSpec

HERE = Path(__file__).resolve().parent  # the repository: services run its files
'''

_FOUND = '''
# What every service is told. {database_comment}
ENV = {{
    "{database_variable}": "{{database_url}}",
    "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    "PYTHONUNBUFFERED": "1",
}}


def answers(status: int, body: str) -> tuple[bool, str]:
    """Ready when the page answers without a server error (a health route is better:
    HttpProbe("/health") with the default judge, HTTP 200)."""
    return status < 500, f"HTTP {{status}}"


class {class_name}(AppProfile):
    name = "{name}"
    web_service = "web"  # its URL is STACK_BACKEND_URL and the browser tests' base_url

    def database(self, config: OrchestratorConfig) -> DatabaseSpec:
        return DatabaseSpec(name="{name}")

    def services(self, config: OrchestratorConfig) -> tuple[ServiceSpec, ...]:
        return (
{services}
        )

    # For the `reset_db` fixture and `ci-stack reset`: bring the data back to a known
    # state, e.g.
    # def reset(self, base_url, seed, headers):
    #     url = f"{{base_url}}/testing/reset"
    #     return requests.post(url, headers=headers, timeout=30).json()

    # For `--provider docker`: the images the services run (see the README). Without
    # them the stack runs on the embedded provider (local PostgreSQL and processes).


profile = {class_name}()
'''

_MIGRATE = """\
            ServiceSpec(
                name="migrate",
                role="job",
                command={command},
                env=ENV,
                probe=ExitProbe(),  # done when it exits 0
            ),
"""

_WEB = """\
            ServiceSpec(
                name="web",
                role="web",
                command={command},
                env=ENV,
                port={port},
                depends_on={depends_on},
                probe=HttpProbe("/", "GET / answers, no server error", judge=answers),
            ),
"""

_NOT_FOUND = """
# `ci-stack init` found no Flask or WSGI app to fill this in: describe your app's services
# below. Each is a command (a one-shot job such as migrations, or a long-running server) with
# the environment it gets and how to tell it is ready. An example for a web app served on a
# port, after its migrations ran:
#
#     ServiceSpec(name="migrate", role="job", env=ENV, probe=ExitProbe(),
#                 command=("{{python}}", "-m", "alembic", "upgrade", "head")),
#     ServiceSpec(name="web", role="web", env=ENV, port=8000, depends_on=("migrate",),
#                 command=("{{python}}", "-m", "myapp", "serve", "--port", "{{port}}"),
#                 probe=HttpProbe("/health", "GET /health answers 200")),

# What every service is told: the database URL under the name your app reads.
ENV = {{
    "DATABASE_URL": "{{database_url}}",
    "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
}}


class {class_name}(AppProfile):
    name = "{name}"
    web_service = "web"  # the service whose URL tests get (STACK_BACKEND_URL, base_url)

    def database(self, config: OrchestratorConfig) -> DatabaseSpec:
        return DatabaseSpec(name="{name}")

    def services(self, config: OrchestratorConfig) -> tuple[ServiceSpec, ...]:
        from orchestrator.errors import PrerequisiteMissing

        _ = (ExitProbe, HttpProbe, ServiceSpec)  # what the services are made of (see above)
        raise PrerequisiteMissing(
            f"the profile in {{__file__}} has no services yet",
            "describe your app's services in its services() (the comments there show how)",
        )


profile = {class_name}()
"""


def render_profile(name: str, app: AppFound | None, migrations: Migrations | None) -> str:
    class_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "App"
    class_name += "Stack"
    header = _HEADER.format(name=name)
    if app is None:
        return header + _NOT_FOUND.format(name=name, class_name=class_name)
    services = ""
    depends_on = "()"
    if migrations is not None:
        services += _MIGRATE.format(command=_tuple(_migrate_command(app, migrations)))
        depends_on = '("migrate",)'
    services += _WEB.format(command=_tuple(_web_command(app)), port=WEB_PORT, depends_on=depends_on)
    if app.database_variable:
        variable = app.database_variable
        comment = f"{app.path.as_posix()} reads its database URL from {variable}."
    else:
        variable = "DATABASE_URL"
        comment = "Rename DATABASE_URL to the variable your app reads its database URL from."
    return header + _FOUND.format(
        name=name,
        class_name=class_name,
        database_variable=variable,
        database_comment=comment,
        services=services.rstrip("\n"),
    )


def render_noxfile() -> str:
    return (
        '"""Sessions: `nox -s e2e` runs the browser tests on a fresh stack; `nox -s up` keeps\n'
        'one running until Ctrl-C (written by `ci-stack init`)."""\n\n'
        + NOX_LINES.replace("\n", "\n\n", 1)
    )


def render_pyproject_table(profile_file: str, provider: str) -> str:
    return (
        "[tool.ci-stack]\n"
        f'app = "{profile_file}:profile"  # the app profile (module:attr or path.py:attr)\n'
        f'provider = "{provider}"  # auto: docker when a daemon answers, else local\n'
        'artifacts = "artifacts/e2e"  # the evidence of a run: report, logs, traces\n'
    )


def render_first_test() -> str:
    return textwrap.dedent('''\
        """The first browser test (written by `ci-stack init`): the app's root page opens.

        `page` comes from pytest-playwright; ci-stack points it at the stack (base_url), sends
        this test's id on every request, and keeps the trace, screenshot and console of a
        failed test in the run's evidence folder.
        """

        from playwright.sync_api import Page


        def test_the_root_page_opens(page: Page) -> None:
            response = page.goto("/")

            assert response is not None, "the browser got no answer for /"
            assert response.status < 500, f"GET / answered {response.status}"
        ''')


HISTORY_KEY = (
    "ci-stack-history-${{ github.ref_name }}-${{ github.run_id }}-${{ github.run_attempt }}"
)
# This branch's latest history, else the default branch's.
HISTORY_RESTORE_KEYS = (
    "ci-stack-history-${{ github.ref_name }}-",
    "ci-stack-history-${{ github.event.repository.default_branch }}-",
)


# For a provider that runs images: they are kept between runs in GitHub's cache (a `docker
# save` of the images ci-stack built and their bases), keyed on what their heavy layers are
# made from. Loaded before the run, they are the builder's layer cache (it passes earlier
# builds as cache_from): a source change rebuilds only the layers after it. Written by shard
# 1 when the key was not an exact hit, and only after the tests ran on them.
_IMAGES_KEY = (
    "ci-stack-images-${{ runner.os }}-"
    "${{ hashFiles('**/Dockerfile', '**/pyproject.toml', '**/requirements*.txt', '**/*.lock') }}"
)
_RESTORE_IMAGES = f"""\
      - name: Restore the stack's images
        id: images-cache
        uses: actions/cache/restore@v6
        with:
          path: ~/.cache/ci-stack-images
          key: {_IMAGES_KEY}
          restore-keys: ci-stack-images-${{{{ runner.os }}}}-
      - name: Load the restored images
        run: |
          saved="$HOME/.cache/ci-stack-images/images.tar"
          if [ -f "$saved" ]; then docker load --quiet --input "$saved"; fi
"""
_SAVE_IMAGES = """\
      - name: Write the images for the next run
        id: images
        if: >-
          ${{ !cancelled() && matrix.shard == 1
          && steps.images-cache.outputs.cache-hit != 'true' }}
        run: |
          if [ ! -f "$STACK_ARTIFACTS/junit.xml" ]; then
            echo "The tests never ran: no images to vouch for, nothing saved."
            exit 0
          fi
          # Only the images this run used (its stack.json names them): superseded ones a
          # restored cache brought back are left out, so the cache does not grow.
          used="$(python -m orchestrator images used "$STACK_ARTIFACTS" | tr '\\n' ' ')"
          mkdir -p "$HOME/.cache/ci-stack-images"
          # shellcheck disable=SC2086  # word splitting wanted: a list of image names
          docker save --output "$HOME/.cache/ci-stack-images/images.tar" $used
          echo "saved=true" >> "$GITHUB_OUTPUT"
      - name: Save the images (also when a step failed)
        if: ${{ !cancelled() && steps.images.outputs.saved == 'true' }}
        uses: actions/cache/save@v6
        with:
          path: ~/.cache/ci-stack-images
          key: ${{ steps.images-cache.outputs.cache-primary-key }}
"""


def render_workflow(shards: int, provider: str, python: str) -> str:
    legs = ", ".join(str(n) for n in range(1, shards + 1))
    history_dir = DEFAULT_HISTORY.as_posix()
    history_key = HISTORY_KEY
    history_branch, history_default = HISTORY_RESTORE_KEYS
    merge = (
        f"python -m orchestrator merge --expect {shards} --history {history_dir} "
        "--out artifacts/merged shards/*"
    )
    runs_images = provider in ("docker", "auto")  # auto: Docker answers on GitHub's runners
    # at the template's own indentation (dedented below with it)
    restore_images = textwrap.indent(_RESTORE_IMAGES, " " * 8) if runs_images else ""
    save_images = textwrap.indent(_SAVE_IMAGES, " " * 8) if runs_images else ""
    return textwrap.dedent(f"""\
        name: e2e

        # Written by `ci-stack init`: the browser tests as {shards} shard(s), each on its own
        # stack, then one merged verdict (junit.xml, summary.md, index.html) and job summary.

        on:
          push:
            branches: [main]
          pull_request:
          workflow_dispatch:

        permissions:
          contents: read

        jobs:
          e2e:
            name: e2e (shard ${{{{ matrix.shard }}}}/{shards})
            runs-on: ubuntu-latest
            timeout-minutes: 30
            strategy:
              fail-fast: false
              matrix:
                shard: [{legs}]
            env:
              STACK_PROVIDER: {provider}
              STACK_SHARD: ${{{{ matrix.shard }}}}/{shards}
              STACK_ARTIFACTS: artifacts/e2e-${{{{ matrix.shard }}}}
              LEG: e2e-leg-${{{{ matrix.shard }}}}
            steps:
              - uses: actions/checkout@v7
              - uses: actions/setup-python@v7
                with:
                  python-version: "{python}"
              # The run history labels failures new / failing before / known flaky; a shard
              # only reads it, the merge job records the whole run and saves it.
              - name: Restore the run history
                uses: actions/cache/restore@v6
                with:
                  path: {history_dir}
                  key: {history_key}
                  restore-keys: |
                    {history_branch}
                    {history_default}
              # The noxfile imports ci-stack's sessions: nox and ci-stack in one environment.
              - name: Install nox and ci-stack
                run: python -m pip install nox ci-stack
{restore_images}\
              - name: e2e, shard ${{{{ matrix.shard }}}}/{shards}
                run: nox -s e2e
              # Which leg and run attempt this is: the merge keeps each leg's latest attempt
              # when a failed job is re-run.
              - name: Record this leg beside its evidence
                if: always()
                run: python -m orchestrator github leg "$STACK_ARTIFACTS" --name "$LEG"
              - name: Upload this shard's evidence
                if: always()
                uses: actions/upload-artifact@v7
                with:
                  name: ${{{{ env.LEG }}}}
                  path: ${{{{ env.STACK_ARTIFACTS }}}}
                  if-no-files-found: warn
                  retention-days: 14
                  overwrite: true # a re-run replaces the earlier attempt's artifact
{save_images}\

          merge:
            name: merged verdict
            needs: e2e
            if: ${{{{ !cancelled() }}}}
            runs-on: ubuntu-latest
            timeout-minutes: 10
            steps:
              - uses: actions/setup-python@v7
                with:
                  python-version: "{python}"
              - name: Install ci-stack
                run: python -m pip install ci-stack
              - name: Restore the run history
                id: history
                uses: actions/cache/restore@v6
                with:
                  path: {history_dir}
                  key: {history_key}
                  restore-keys: |
                    {history_branch}
                    {history_default}
              # `e2e-leg-*` cannot match `e2e-merged` (a re-run's merge sees only the legs).
              - name: Download every shard's evidence
                uses: actions/download-artifact@v8
                with:
                  pattern: e2e-leg-*
                  path: shards
              - name: Merge the shards
                run: {merge}
              - name: Save the run history (also when the merge is red)
                if: ${{{{ !cancelled() && steps.history.outputs.cache-hit != 'true' }}}}
                uses: actions/cache/save@v6
                with:
                  path: {history_dir}
                  key: ${{{{ steps.history.outputs.cache-primary-key }}}}
              - name: Upload the merged report
                id: upload
                if: always()
                uses: actions/upload-artifact@v7
                with:
                  name: e2e-merged
                  path: artifacts/merged
                  if-no-files-found: warn
                  retention-days: 14
                  overwrite: true # a re-run's merge replaces the earlier attempt's
              - name: Job summary
                if: always()
                env:
                  ARTIFACT_URL: ${{{{ steps.upload.outputs.artifact-url }}}}
                run: |
                  summary=artifacts/merged/summary.md
                  if [ -f "$summary" ]; then
                    python -m orchestrator github summary "$summary" --artifact-url "$ARTIFACT_URL"
                  else
                    echo "No merged summary: the merge failed early." >> "$GITHUB_STEP_SUMMARY"
                  fi
        """)
