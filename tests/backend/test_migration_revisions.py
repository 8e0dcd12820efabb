"""The revision graph readyz reads without alembic agrees with alembic's own reading."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from backend.services import migration_service
from backend.services.migration_service import MIGRATIONS_DIR, head_revisions, revision_graph


def alembic_graph(script_location: Path) -> dict[str, tuple[str, ...]]:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    script = ScriptDirectory.from_config(config)
    return {r.revision: tuple(sorted(r._all_down_revisions)) for r in script.walk_revisions()}


def test_the_graph_and_heads_are_alembics() -> None:
    ours = {revision: tuple(sorted(downs)) for revision, downs in revision_graph().items()}
    assert ours == alembic_graph(MIGRATIONS_DIR)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert set(head_revisions()) == set(ScriptDirectory.from_config(config).get_heads())


def test_branches_and_merges_read_like_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    versions = tmp_path / "versions"
    versions.mkdir()
    (tmp_path / "script.py.mako").write_text("")
    (tmp_path / "env.py").write_text("")
    for revision, down in [("a", None), ("b", "a"), ("c", "a"), ("d", ("b", "c")), ("e", "d")]:
        (versions / f"{revision}_step.py").write_text(
            textwrap.dedent(f"""\
                revision: str = {revision!r}
                down_revision = {down!r}
                branch_labels = None
                depends_on = None
                """)
        )
    monkeypatch.setattr(migration_service, "VERSIONS_DIR", versions)
    revision_graph.cache_clear()
    try:
        ours = {revision: tuple(sorted(downs)) for revision, downs in revision_graph().items()}
        assert ours == alembic_graph(tmp_path)
        assert head_revisions() == ("e",)
    finally:
        revision_graph.cache_clear()


def test_serving_imports_neither_alembic_nor_sqlalchemy() -> None:
    """Half the server's start-up went to importing them for readyz's pending check."""
    code = (
        "import sys, backend.app; "
        "print(sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
