"""The stack as data: frozen specs from which every provider and compose.yaml are derived.

Nothing here knows an application: an app profile (`orchestrator.profile.AppProfile`) fills
these in.
Commands and environment values may hold placeholders that a provider fills when it starts
the service: `{python}` (the interpreter: this one locally, `python` in a container),
`{host}` and `{port}` (where the service must listen), `{instance}` (e.g. `worker-2`),
`{run_id}` and `{database_url}` (the database as the service reaches it).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_PORT = 5432
DB_SERVICE = "db"  # the database's name in specs, logs and on container networks

# -- probes: what "ready" means for one service ----------------------------------------------

# judge(status_code, body_text) -> (ready?, the answer as a short sentence)
HttpJudge = Callable[[int, str], tuple[bool, str]]


def status_200(status: int, body: str) -> tuple[bool, str]:
    return status == 200, f"HTTP {status} {body.strip()[:400]}"


@dataclass(frozen=True)
class HttpProbe:
    """Ready when GET `path` on `service` (default: the probed one) satisfies `judge`."""

    path: str
    description: str
    judge: HttpJudge = status_200
    service: str | None = None  # another service's URL (e.g. workers listed by the web app)


@dataclass(frozen=True)
class ExitProbe:
    """A one-shot job (e.g. migrations): done when it exits with code 0."""

    description: str = "exit code 0"


@dataclass(frozen=True)
class PostgresProbe:
    """Ready when PostgreSQL accepts connections and has `extensions` available."""

    extensions: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        extras = f" with {', '.join(self.extensions)} available" if self.extensions else ""
        return f"PostgreSQL accepting connections{extras}"


Probe = HttpProbe | ExitProbe | PostgresProbe


# -- services -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack.

    `replicas=None` is a single instance named `name`; an int N starts instances
    `name-1` … `name-N` (0: none), whose probe is checked once for the group.
    `depends_on` names services that must be ready (jobs: exited 0) before this one starts.
    `log_stream` is the path of an SSE log stream on this service's URL, followed from the
    moment it is ready. `image` names one of the app profile's images (containers only).
    `waits_for_database`: the service waits itself until the database answers, so it is
    started while the database comes up (it imports meanwhile) instead of after.
    """

    name: str
    role: str
    command: tuple[str, ...]
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    port: int | None = None
    depends_on: tuple[str, ...] = ()
    replicas: int | None = None
    log_stream: str | None = None
    waits_for_database: bool = False

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name == DB_SERVICE:
            raise ValueError(f"service name {self.name!r} is empty, has a '/' or is reserved")
        if self.replicas is not None and self.replicas < 0:
            raise ValueError(f"{self.name}: replicas must be 0 or more")
        if isinstance(self.probe, HttpProbe) and self.probe.service is None and not self.port:
            raise ValueError(f"{self.name}: an HTTP probe of its own needs a port")

    @property
    def is_job(self) -> bool:
        return isinstance(self.probe, ExitProbe)

    def instances(self) -> tuple[str, ...]:
        if self.replicas is None:
            return (self.name,)
        return tuple(f"{self.name}-{index}" for index in range(1, self.replicas + 1))


@dataclass(frozen=True)
class DatabaseSchema:
    """What the app's one-shot `jobs` build in a fresh database, named by `key`.

    Equal keys mean equal results, so a provider may start the database from a copy made
    after the jobs ran once (and skip them); any change to what they read must change the
    key. `from_files` makes one from the files that decide it (say, the migrations).
    """

    key: str
    jobs: tuple[str, ...]

    @classmethod
    def from_files(cls, jobs: tuple[str, ...], paths: Iterable[Path]) -> DatabaseSchema:
        """A key hashing the names and contents of `paths` (folders: every file under them)."""
        digest = hashlib.sha256()
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if "__pycache__" in file.parts:
                    continue
                digest.update(f"{file.relative_to(path.parent)}\0".encode())
                digest.update(file.read_bytes())
                digest.update(b"\0")
        return cls(key=digest.hexdigest()[:20], jobs=jobs)


@dataclass(frozen=True)
class DatabaseSpec:
    """The stack's PostgreSQL: embedded locally, a container on docker."""

    user: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    name: str = "app"
    image: str | None = None  # the profile's image for containers (None: no container image)
    extensions: tuple[str, ...] = ()
    port: int = DB_PORT
    max_connections: int = 200  # the budget a profile checks its services against
    schema: DatabaseSchema | None = None  # what the app's jobs build: may be cloned, not rebuilt

    @property
    def probe(self) -> PostgresProbe:
        return PostgresProbe(self.extensions)


@dataclass(frozen=True)
class ContainerImage:
    """A concrete image a container provider runs: its tag and (when known) its id."""

    tag: str
    image_id: str | None = None
    facts: Mapping[str, Any] | None = None  # for stack.json (digest, build status, ...)


@dataclass(frozen=True)
class StackSpec:
    """A whole stack: its database and services, for one run.

    `images` is empty until the prepare step (`orchestrator.prepare`) has turned the image
    requests (`image_requests()`: names the profile gives its database and services) into
    concrete images, for a provider that runs containers.
    """

    run_id: str
    app: str  # the profile's name, for stack.json and the report
    database: DatabaseSpec
    services: tuple[ServiceSpec, ...]
    timeout: float = 60.0
    images: Mapping[str, ContainerImage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [s.name for s in self.services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"service names used twice: {', '.join(duplicates)}")
        known = {*names, DB_SERVICE}
        for service in self.services:
            missing = [d for d in service.depends_on if d not in known]
            probed = service.probe.service if isinstance(service.probe, HttpProbe) else None
            if probed is not None and probed not in names:
                missing.append(probed)
            if missing:
                raise ValueError(f"{service.name} refers to unknown service(s) {missing}")
        schema = self.database.schema
        for job in schema.jobs if schema is not None else ():
            if job not in names or not self.service(job).is_job:
                raise ValueError(f"the database schema names {job!r}, which is not a job")
        self.start_levels()  # raises on a dependency cycle

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach an artifact."""
        return (self.database.password,)

    def image_requests(self) -> tuple[str, ...]:
        """The image names the database and services ask for, sorted."""
        names = {s.image for s in self.services if s.image} | {self.database.image}
        return tuple(sorted(name for name in names if name))

    def service(self, name: str) -> ServiceSpec:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def start_levels(self) -> tuple[tuple[ServiceSpec, ...], ...]:
        """Services grouped by dependency depth: each level needs only earlier ones."""
        levels: list[tuple[ServiceSpec, ...]] = []
        placed = {DB_SERVICE}
        pending = list(self.services)
        while pending:
            level = tuple(s for s in pending if set(s.depends_on) <= placed)
            if not level:
                cycle = ", ".join(s.name for s in pending)
                raise ValueError(f"depends_on has a cycle among: {cycle}")
            levels.append(level)
            placed |= {s.name for s in level}
            pending = [s for s in pending if s not in level]
        return tuple(levels)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)


PLACEHOLDERS = ("python", "host", "port", "instance", "run_id", "database_url")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace the known `{placeholders}` in `template`; other braces are left alone."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def rendered(service: ServiceSpec, values: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one instance, placeholders filled."""
    command = [fill(part, values) for part in service.command]
    env = {key: fill(value, values) for key, value in service.env.items()}
    return command, env
