"""The outcomes a test can have, named once: the run folder's results and the history read
and write these words."""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed", "flaky"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
PROBLEMS: tuple[Outcome, ...] = ("failed", "error")  # make a run red and get evidence
