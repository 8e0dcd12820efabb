"""What the image modules share: labels, a build's result and its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.errors import OrchestratorError

BaseChoice = Literal["auto", "public", "offline"]
BuildStatus = Literal["built", "cached"]

IMAGE_REPOSITORY = "ci-stack"
LABEL_PREFIX = "ci-stack"
IMAGE_LABEL = f"{LABEL_PREFIX}.image"  # which image (or build stage) this is: ours
INPUTS_HASH_LABEL = f"{LABEL_PREFIX}.inputs-hash"  # the content hash its tag is named after
CHECKOUT_LABEL = f"{LABEL_PREFIX}.checkout"  # the checkout that built it (`checkout_id`)
# The build arg that carries the checkout id into the Dockerfile, for build stages' labels
# (the labels a build is given land on its final stage only); not part of the inputs hash.
CHECKOUT_BUILD_ARG = "CI_STACK_CHECKOUT"

SUBPROCESS_TIMEOUT_S = 1200
TAIL_LINES = 40


class ImageBuildFailed(OrchestratorError):
    """Building an image (or what goes into it) failed; carries the tail of the output."""

    def __init__(self, image: str, reason: str, tail: Sequence[str], hint: str = "") -> None:
        super().__init__(image, reason)
        self.image = image
        self.reason = reason
        self.tail = list(tail)
        self.hint = hint

    def __str__(self) -> str:
        text = f"building {self.image} failed: {self.reason}"
        if self.tail:
            text += "\n--- last output lines ---\n" + "\n".join(self.tail)
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


@dataclass(frozen=True)
class ImageResult:
    """What happened to one image; `dataclasses.asdict()` of it fits stack.json."""

    name: str
    tag: str
    image_id: str
    status: BuildStatus
    seconds: float
    size_bytes: int
    base_image: str | None = None  # the BASE_IMAGE it was built FROM; None for the base
    inputs_hash: str | None = None
    base_source: str | None = None  # "local", "pulled" or "bootstrapped"; None for the base
