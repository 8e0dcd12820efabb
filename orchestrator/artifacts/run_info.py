"""What the session knows about a run when it finishes: verdict, provider, command, timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

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
            incomplete={str(k): str(v) for k, v in (data.get("incomplete") or {}).items()},
        )
