"""Never harm what isn't ours: the real `clean --images` and `images prune` of one checkout
remove its stale images and build stages, and leave another checkout's and unlabelled ones.

Two checkouts of the test's own (each with the orchestrator package, so the CLI run from it
names it) build tiny two-stage images through the real build path, FROM a base the test
imports; every image carries the test's run label and is removed by it at the end.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator import images
from orchestrator.images.results import CHECKOUT_BUILD_ARG
from tests.fixtures.checkout import checkout_recipes, make_checkout, run_cli_in, write_dockerfile
from tests.fixtures.docker_images import import_marker_image

pytestmark = pytest.mark.docker


def _dockerfile(base: str, version: str) -> str:
    """Two stages like the backend's: the first labels itself with the building checkout."""
    return (
        f"ARG BASE_IMAGE={base}\n"
        "FROM ${BASE_IMAGE} AS build\n"
        f"ARG {CHECKOUT_BUILD_ARG}=\n"
        f"LABEL {images.LABEL_PREFIX}.image=test-build-stage "
        f"{images.CHECKOUT_LABEL}=${{{CHECKOUT_BUILD_ARG}}}\n"
        "FROM ${BASE_IMAGE}\n"
        "COPY --from=build /marker /copied\n"
        f"LABEL version={version}\n"
    )


def _build(client: Any, root: Path, label: str) -> str:
    key, value = label.split("=", 1)
    built = images.build_images(
        checkout_recipes(root), project_root=root, client=client, labels={key: value},
        progress=images.BuildProgress(io.StringIO()),
    )  # fmt: skip
    return built["postgres-pgmq"].tag


def _stages(client: Any, checkout: str, label: str) -> set[str]:
    filters = {"label": [label, f"{images.CHECKOUT_LABEL}={checkout}"], "dangling": True}
    return {image.id for image in client.images.list(filters=filters)}


def _tags(client: Any, label: str) -> set[str]:
    return {tag for image in client.images.list(filters={"label": label}) for tag in image.tags}


@pytest.mark.parametrize(
    "command",
    [("clean", "--run-id", "pytest-no-such-run", "--images"), ("images", "prune")],
    ids=["clean --images", "images prune"],
)
def test_only_this_checkouts_stale_images_and_stages_go(
    command: tuple[str, ...], docker_api: Any, run_label: str, tmp_path: Path
) -> None:
    key, value = run_label.split("=", 1)
    base = f"ci-stack-test-{uuid.uuid4().hex[:8]}/base:1"
    import_marker_image(docker_api, base, {key: value})
    mine = make_checkout(tmp_path / "mine", {"postgres-pgmq": _dockerfile(base, "1")})
    stale = _build(docker_api, mine, run_label)
    write_dockerfile(mine, "postgres-pgmq", _dockerfile(base, "2"))
    current = _build(docker_api, mine, run_label)
    other = make_checkout(tmp_path / "other", {"postgres-pgmq": _dockerfile(base, "3")})
    foreign = _build(docker_api, other, run_label)
    # As built before images carried the checkout: ours by every other label.
    digest = uuid.uuid4().hex
    unlabelled = f"{images.IMAGE_REPOSITORY}/postgres-pgmq:{digest[:16]}"
    import_marker_image(docker_api, unlabelled, {
        key: value, f"{images.LABEL_PREFIX}.image": "postgres-pgmq",
        f"{images.LABEL_PREFIX}.inputs-hash": digest,
    })  # fmt: skip
    my_stages = _stages(docker_api, images.checkout_id(mine), run_label)
    other_stages = _stages(docker_api, images.checkout_id(other), run_label)
    # The build stages are labelled (a rebuild with layer cache may leave one more of them).
    assert my_stages and other_stages
    assert len({stale, current, foreign}) == 3

    result = run_cli_in(mine, *command, timeout=300)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert _tags(docker_api, run_label) == {base, current, foreign, unlabelled}
    assert _stages(docker_api, images.checkout_id(mine), run_label) == set()
    assert _stages(docker_api, images.checkout_id(other), run_label) == other_stages
    removed = sorted(line.split()[-1] for line in result.stdout.splitlines())
    assert removed == sorted([stale, *my_stages])
    summary = re.search(
        r"images of checkout (\w+): removed (\d+), kept \d+ \((.*)\)", result.stderr
    )
    assert summary is not None, result.stderr
    assert summary[1] == images.checkout_id(mine)
    assert int(summary[2]) == 1 + len(my_stages)
    kept = dict((why, int(n)) for n, why in re.findall(r"(\d+) ([^,]+)", summary[3]))
    assert kept["current"] >= 1
    assert kept["another checkout's"] >= 1
    assert kept["no checkout label"] >= 1
