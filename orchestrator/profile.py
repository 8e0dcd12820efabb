"""App profiles: everything the orchestrator knows about one application, in one object.

A profile says which services make up the app's stack (`services`), what its database needs
(`database`), which container images it runs (`images`: recipes the generic image machinery
builds; or `prepare_images` for images had another way), what a command run against
the stack is told (`environment`), how to reset its data between tests (`reset`). The core
modules never name an application; they only call these.

Select one with `--app module:attr` (or `path/to/file.py:attr`), `STACK_APP`, or
`app = "..."` under `[tool.ci-stack]` in pyproject.toml. Write your own by subclassing
`AppProfile` (see `examples/notes_app/profile.py`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.spec import DatabaseSpec, ServiceSpec, StackSpec, new_run_id

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.images.recipe import ImageRecipe

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ContainerImage:
    """An image a container provider can run: its tag and (when known) its id."""

    tag: str
    image_id: str | None = None
    facts: Mapping[str, Any] | None = None  # for stack.json (digest, build status, ...)


class AppProfile:
    """Base class: override `services` (and more as needed)."""

    name: str = "app"
    # The service whose URL tests get as STACK_BACKEND_URL (the app's front door).
    web_service: str | None = None

    def database(self, config: OrchestratorConfig) -> DatabaseSpec:
        return DatabaseSpec()

    def services(self, config: OrchestratorConfig) -> tuple[ServiceSpec, ...]:
        raise NotImplementedError(f"{type(self).__name__} must define services(config)")

    def spec(
        self, config: OrchestratorConfig, run_id: str | None = None, password: str | None = None
    ) -> StackSpec:
        database = self.database(config)
        if password is not None:
            database = replace(database, password=password)
        return StackSpec(
            run_id=run_id or new_run_id(),
            app=self.name,
            database=database,
            services=self.services(config),
            timeout=config.timeout,
        )

    def images(self) -> Sequence[ImageRecipe]:
        """The images `database().image` and services' `image` name, as recipes (a folder
        with a Dockerfile, generated files; `orchestrator.images.postgres_pgmq_image()` is
        the built-in database image). Built by the default `prepare_images`."""
        return ()

    def images_available(self, client: Any) -> tuple[bool, str]:
        """Cheap (nothing built or pulled): can `prepare_images` succeed here? `auto` asks
        this before it picks a container provider; (False, why) makes it fall back."""
        recipes = self.images()
        if not recipes:
            return True, "the profile does not say"
        from orchestrator.images.base import can_provide_images

        return can_provide_images(client, recipes)

    def prepare_images(
        self, client: Any, progress: Progress, log_path: Path | None = None
    ) -> Mapping[str, ContainerImage]:
        """Build or find the images that `database().image` and services' `image` name;
        one progress line per step, the whole build output appended to `log_path`."""
        recipes = self.images()
        if recipes:
            from orchestrator.images.build import build_images

            built = build_images(recipes, client=client, log_path=log_path)
            return {
                name: ContainerImage(result.tag, result.image_id, facts=asdict(result))
                for name, result in built.items()
            }
        raise PrerequisiteMissing(
            f"app profile {self.name!r} has no container images",
            "use --provider local, or give the profile images() (or a prepare_images())",
        )

    def environment(self, spec: StackSpec) -> dict[str, str]:
        """Extra variables for a command run against the stack (beyond the STACK_* ones)."""
        return {}

    def reset(self, base_url: str, seed: bool, headers: Mapping[str, str]) -> dict[str, Any]:
        """Bring the app's data back to a known state (the pytest `reset_db` fixture)."""
        raise OrchestratorError(f"app profile {self.name!r} has no reset")


class ProfileError(OrchestratorError):
    """`--app` / STACK_APP names no usable AppProfile (see the two cases below)."""


class ProfileNotFound(ProfileError):
    """`--app` / STACK_APP names something that is not an AppProfile."""


class ProfileBroken(ProfileError):
    """The profile's code failed: a syntax error, or an exception at import or when its
    factory ran. One line: where (file:line) and the error."""

    def __init__(self, reference: str, stage: str, error: BaseException) -> None:
        where = _where(error)
        said = error.msg if isinstance(error, SyntaxError) else str(error)  # no "(file, line)"
        text = " ".join(str(said).split()) or "(no message)"
        if len(text) > ERROR_TEXT_LIMIT:
            text = text[:ERROR_TEXT_LIMIT].rstrip() + " …"
        super().__init__(
            f"app profile {reference!r} failed {stage}: {where}{type(error).__name__}: {text}."
            " Fix: correct it there, or name another profile (--app or STACK_APP)"
        )
        self.reference = reference
        self.error = error


ERROR_TEXT_LIMIT = 300  # characters of the profile's own error message in ProfileBroken


def load_profile(reference: str | None) -> AppProfile:
    """`package.module:attr` or `path/to/file.py:attr` → the AppProfile it names.

    `attr` may be a profile instance, an AppProfile subclass, or a function returning one.
    A profile that does not load raises ProfileNotFound or ProfileBroken (one line each);
    None (no profile configured) raises ProfileNotFound naming where to configure one."""
    if reference is None:
        raise ProfileNotFound(
            'no app profile is configured. Fix: set app = "module:attr" (or '
            '"path/to/file.py:attr") under [tool.ci-stack] in pyproject.toml, or pass --app '
            "or STACK_APP"
        )
    module_ref, sep, attr = reference.rpartition(":")
    if not sep or not module_ref or not attr:
        raise ProfileNotFound(
            f"app profile {reference!r} is not of the form module:attr or path/to/file.py:attr"
        )
    module = _import(module_ref, reference)
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise ProfileNotFound(
            f"app profile {reference!r}: {module_ref} has no attribute {attr!r}"
        ) from None
    if (isinstance(target, type) and issubclass(target, AppProfile)) or (
        callable(target) and not isinstance(target, AppProfile)
    ):
        try:
            target = target()
        except OrchestratorError:
            raise  # already one line saying what and how to fix
        except Exception as exc:
            raise ProfileBroken(reference, f"when {attr}() ran", exc) from exc
    if not isinstance(target, AppProfile):
        raise ProfileNotFound(
            f"app profile {reference!r} is a {type(target).__name__}, not an AppProfile"
        )
    return target


def _import(module_ref: str, reference: str) -> Any:
    if module_ref.endswith(".py") or "/" in module_ref:
        return _import_file(module_ref, reference)
    try:
        return importlib.import_module(module_ref)
    except ModuleNotFoundError as exc:
        if not _names_parent(exc.name, module_ref):
            raise ProfileBroken(reference, "to import", exc) from exc
        raise ProfileNotFound(
            f"app profile {reference!r}: module {exc.name!r} not found "
            "(is it installed or on PYTHONPATH? a file path works too: path/to/profile.py:attr)"
        ) from None
    except OrchestratorError:
        raise
    except Exception as exc:  # SyntaxError included: it is an Exception
        raise ProfileBroken(reference, "to import", exc) from exc


def _import_file(module_ref: str, reference: str) -> Any:
    path = Path(module_ref).expanduser().resolve()
    if not path.is_file():
        raise ProfileNotFound(f"app profile {reference!r}: no file {path}")
    name = f"ci_stack_profile_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProfileNotFound(f"app profile {reference!r}: {path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # The profile's own folder is importable, so it can import its app.
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)  # a half-run module is not left behind
        sys.path.remove(folder)
        if isinstance(exc, OrchestratorError) or not isinstance(exc, Exception):
            raise
        raise ProfileBroken(reference, "to import", exc) from exc
    return module


def _names_parent(missing: str | None, module_ref: str) -> bool:
    """True when the module not found is `module_ref` itself or a package above it."""
    return missing is not None and (module_ref == missing or module_ref.startswith(missing + "."))


def _where(error: BaseException) -> str:
    """`file:line: ` of an error: a syntax error's own place, else the innermost frame of
    its traceback outside the import machinery; "" when there is none."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}: "
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<") and frame.filename != __file__
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
