"""App profiles: everything the orchestrator knows about one application, in one object.

A profile says which services make up the app's stack (`services`), what its database needs
(`database`), which container images it runs (`images`: recipes the generic image machinery
builds, or `prepare_images` for images had another way; called by the prepare step before a
stack exists), what a command run against
the stack is told (`environment`), how to reset its data between tests (`reset`). The core
modules never name an application; they only call these.

Select one with `--app module:attr` (or `path/to/file.py:attr`), `STACK_APP`, or
`app = "..."` under `[tool.ci-stack]` in pyproject.toml. Write your own by subclassing
`AppProfile` (see `examples/notes_app/profile.py`).

A reference resolves the same in the CLI, the pytest plugin and every child process: a
module is looked for in the project root (the folder of pyproject.toml, or pytest's rootdir)
before the installed packages, a relative file path from the working directory, else from
the project root; a local module that the standard library or an installed module of the
same name would shadow in another process is refused (rename it, or name it by path).
`canonical_reference` is what the CLI hands its command (STACK_APP): a file as an absolute
path, so the command finds the very file whatever its working directory.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.spec import ContainerImage, DatabaseSpec, ServiceSpec, StackSpec, new_run_id

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.images.recipe import ImageRecipe


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
        this (through `orchestrator.prepare`) before it picks a container provider; (False,
        why) makes it fall back."""
        recipes = self.images()
        if not recipes:
            return True, "the profile does not say"
        from orchestrator.images.base import can_provide_images

        return can_provide_images(client, recipes)

    def prepare_images(
        self, client: Any, log_path: Path | None = None
    ) -> Mapping[str, ContainerImage]:
        """Build or find the images that `database().image` and services' `image` name;
        called by `orchestrator.prepare` before the stack exists; the whole build output
        appended to `log_path`."""
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


def load_profile(reference: str | None, root: Path | None = None) -> AppProfile:
    """`package.module:attr` or `path/to/file.py:attr` → the AppProfile it names; `root` is
    the project root (default: the folder of the nearest pyproject.toml, else the working
    directory).

    `attr` may be a profile instance, an AppProfile subclass, or a function returning one.
    A profile that does not load raises ProfileNotFound or ProfileBroken (one line each);
    None (no profile configured) raises ProfileNotFound naming where to configure one."""
    if reference is None:
        raise ProfileNotFound(
            'no app profile is configured. Fix: set app = "module:attr" (or '
            '"path/to/file.py:attr") under [tool.ci-stack] in pyproject.toml, or pass --app '
            "or STACK_APP"
        )
    module_ref, attr = _split(reference)
    module = _import(module_ref, reference, root or project_root())
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


def canonical_reference(reference: str, root: Path | None = None) -> str:
    """`reference` as a child process must be told it: a file as its absolute path (found
    as `load_profile` finds it), a module unchanged."""
    module_ref, attr = _split(reference)
    if not _is_file_reference(module_ref):
        return reference
    found = _find_file(module_ref, root or project_root())
    return f"{found}:{attr}" if found is not None else reference


def project_root() -> Path:
    """The folder of the nearest pyproject.toml from the working directory, else it."""
    from orchestrator.config import find_pyproject

    found = find_pyproject()
    return found.parent if found is not None else Path.cwd().resolve()


def _split(reference: str) -> tuple[str, str]:
    module_ref, sep, attr = reference.rpartition(":")
    if not sep or not module_ref or not attr:
        raise ProfileNotFound(
            f"app profile {reference!r} is not of the form module:attr or path/to/file.py:attr"
        )
    return module_ref, attr


def _is_file_reference(module_ref: str) -> bool:
    return module_ref.endswith(".py") or "/" in module_ref


def _import(module_ref: str, reference: str, root: Path) -> Any:
    if _is_file_reference(module_ref):
        return _import_file(module_ref, reference, root)
    local = _local_module(module_ref, root)
    if local is not None:
        _refuse_shadowed(module_ref, local, reference, root)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))  # the profile imports its app from here too
    try:
        return importlib.import_module(module_ref)
    except ModuleNotFoundError as exc:
        if not _names_parent(exc.name, module_ref):
            raise ProfileBroken(reference, "to import", exc) from exc
        raise ProfileNotFound(
            f"app profile {reference!r}: module {exc.name!r} not found in {root} "
            "nor installed (a file path works too: path/to/profile.py:attr)"
        ) from None
    except OrchestratorError:
        raise
    except Exception as exc:  # SyntaxError included: it is an Exception
        raise ProfileBroken(reference, "to import", exc) from exc


def _local_module(module_ref: str, root: Path) -> Path | None:
    """The file or package folder of `module_ref`'s top-level name in `root`, if any."""
    top = module_ref.partition(".")[0]
    for candidate in (root / f"{top}.py", root / top):
        if (
            candidate.is_file()
            or (candidate.is_dir() and module_ref != top)
            or (candidate / "__init__.py").is_file()
        ):
            return candidate
    return None


def _refuse_shadowed(module_ref: str, local: Path, reference: str, root: Path) -> None:
    """Refuse a local module whose name the standard library or an installed module also
    has: which one an import finds depends on the process (its sys.path, what it imported
    before), so the same reference could load different code in the CLI and in pytest."""
    top = module_ref.partition(".")[0]
    other: str | None = None
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        other = f"the standard library's module {top!r}"
    else:
        origin = _found_elsewhere(top, local, root)
        if origin is not None:
            other = f"the installed module {top!r} ({origin})"
    if other is None:
        return
    fix = "rename it"
    if local.suffix == ".py":
        attr = reference.rpartition(":")[2]
        by_path = f"{local.relative_to(root).as_posix()}:{attr}"
        fix = f"rename it (e.g. {local.stem}_profile.py), or name it by path: {by_path}"
    raise ProfileNotFound(f"app profile {reference!r}: {local} is shadowed by {other}. Fix: {fix}")


def _found_elsewhere(top: str, local: Path, root: Path) -> str | None:
    """Where an import of `top` finds it other than `local` (already imported, or on
    sys.path outside the project root and the working directory), or None."""
    mine = {root.resolve(), Path.cwd().resolve()}
    loaded = sys.modules.get(top)
    places: list[str] = []
    if loaded is not None:
        places += [getattr(loaded, "__file__", None) or ""]
        places += list(getattr(loaded, "__path__", []))
    path = [p for p in sys.path if Path(p or ".").resolve() not in mine]
    spec = importlib.machinery.PathFinder.find_spec(top, path)
    if spec is not None:
        places += [spec.origin or "", *(spec.submodule_search_locations or [])]
    for place in places:
        if place and not Path(place).resolve().is_relative_to(local.resolve()):
            return place
    return None


def _find_file(module_ref: str, root: Path) -> Path | None:
    """A file reference from the working directory, else from the project root."""
    given = Path(module_ref).expanduser()
    for candidate in (given, root / given) if not given.is_absolute() else (given,):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _import_file(module_ref: str, reference: str, root: Path) -> Any:
    path = _find_file(module_ref, root)
    if path is None:
        where = "" if Path(module_ref).is_absolute() else f" in {Path.cwd()} nor in {root}"
        raise ProfileNotFound(f"app profile {reference!r}: no file {module_ref}{where}")
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
