"""What the session knows about a run when it finishes: verdict, provider, command, timings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

from orchestrator.artifacts.layout import SESSION_FILE

Verdict = Literal["passed", "failed", "error"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


@dataclass(frozen=True)
class RunInfo:
    """One run as the session saw it; saved as run.json so `load_run` can read it back."""

    run_id: str
    provider: str
    verdict: Verdict
    app: str = "?"  # the app profile's name ("?": not known)
    command: list[str] | None = None
    command_status: int | None = None
    error: str | None = None  # stack start/teardown failure or "service died" text
    timings: dict[str, float] = field(default_factory=dict)
    stack: dict[str, Any] = field(default_factory=dict)  # the stack.json facts
    started_at: str | None = None  # ISO 8601 UTC
    finished_at: str | None = None
    # pytest's session duration, the "in N.NNs" it printed (None: not a pytest run, or unknown)
    test_seconds: float | None = None
    # Evidence that could not be written (a full disk): path in the folder -> why.
    incomplete: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunInfo:
        """The inverse of `to_json`; unknown keys are ignored, a bad verdict reads as error."""
        verdict = data.get("verdict")
        return cls(
            run_id=str(data.get("run_id") or "?"),
            provider=str(data.get("provider") or "?"),
            verdict=cast(Verdict, verdict if verdict in VERDICTS else "error"),
            app=str(data.get("app") or "?"),
            command=list(data["command"]) if data.get("command") else None,
            command_status=data.get("command_status"),
            error=data.get("error"),
            timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
            stack=dict(data.get("stack") or {}),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            test_seconds=_seconds(data.get("test_seconds")),
            incomplete={str(k): str(v) for k, v in (data.get("incomplete") or {}).items()},
        )


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def with_test_seconds(run: RunInfo, folder: Path) -> RunInfo:
    """`run` with pytest's session duration, from the folder's pytest-session.json (written
    by the evidence plugin) when the run does not know it already."""
    if run.test_seconds is not None:
        return run
    try:
        data = json.loads((folder / SESSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return run
    seconds = _seconds(data.get("seconds")) if isinstance(data, dict) else None
    return replace(run, test_seconds=seconds)
