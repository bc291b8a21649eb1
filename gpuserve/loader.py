"""Find endpoint classes from ``module:Class`` or ``path/to/file.py:Class`` references."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

from .endpoint import Endpoint
from .errors import EndpointLoadError, GpuserveError


def load_endpoint(reference: str) -> type[Endpoint]:
    """Import the endpoint class named by ``reference``.

    Example: ``load_endpoint("examples/tiny.py:Echo")`` or ``load_endpoint("myapp.serve:Embed")``.
    """
    target, sep, class_path = reference.rpartition(":")
    if not sep or not target or not class_path:
        raise EndpointLoadError(
            f"Invalid endpoint reference {reference!r}; write MODULE:CLASS or FILE.py:CLASS, "
            "for example examples/tiny.py:Echo."
        )
    if not target.endswith(".py") and ("/" in target or "\\" in target or target.startswith(".")):
        raise EndpointLoadError(
            f"Invalid endpoint reference {reference!r}: {target!r} is neither a module name nor a .py file; "
            f"write {target.rstrip('/')}.py:{class_path} for a file, "
            f"or a dotted module name such as app.serve:{class_path}."
        )
    try:
        module = _import_file(target) if target.endswith(".py") else _import_module(target)
    except GpuserveError:
        raise
    except Exception as exc:  # the user's module raised while it was imported
        raise EndpointLoadError(
            f"Importing {target} failed with {type(exc).__name__}: {exc}; fix that module, or install what it "
            "imports (the traceback follows).",
            traceback=traceback.format_exc(),
        ) from exc

    found: object = module
    for part in class_path.split("."):
        if not hasattr(found, part):
            raise EndpointLoadError(f"{target} has no attribute {class_path!r}; check the class name in {reference!r}.")
        found = getattr(found, part)
    if not (isinstance(found, type) and issubclass(found, Endpoint)):
        raise EndpointLoadError(f"{reference} is {found!r}, not a subclass of gpuserve.Endpoint.")
    return found


def _import_module(name: str) -> object:
    if "" not in sys.path:
        sys.path.insert(0, "")  # `python -m` does this too: modules in the working directory win
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise EndpointLoadError(
                f"Module {name!r} not found; run from the directory that contains it or give a file path such as "
                f"{name.replace('.', '/')}.py:ClassName."
            ) from exc
        raise


def _import_file(path_text: str) -> object:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise EndpointLoadError(
            f"File {path_text!r} not found; give the path of the Python file that defines the endpoint."
        )
    module_name = path.stem
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    if existing is not None or module_name in sys.stdlib_module_names:
        # Registering the file under that name would replace the real module for the whole process.
        raise EndpointLoadError(
            f"File {path_text!r} has the same name as the module {module_name!r}; rename the file, "
            f"for example to {module_name}_endpoint.py."
        )

    # The file's directory goes on sys.path so that the endpoint can import its neighbours.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EndpointLoadError(f"Cannot import {path_text!r} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def reference_of(cls: type[Endpoint]) -> str:
    """Return a reference that ``load_endpoint`` resolves to ``cls`` in another process."""
    if "<locals>" in cls.__qualname__:
        raise EndpointLoadError(
            f"{cls.__qualname__} is defined inside a function; define endpoint classes at module level "
            "so that the server process can import them."
        )
    module = sys.modules.get(cls.__module__)
    if cls.__module__ == "__main__" or module is None or getattr(module, "__spec__", None) is None:
        try:
            source = inspect.getfile(cls)
        except TypeError as exc:
            raise EndpointLoadError(
                f"{cls.__qualname__} has no source file (defined in an interactive session?); "
                "move it into a .py file and deploy it from there."
            ) from exc
        return f"{Path(source).resolve()}:{cls.__qualname__}"
    return f"{cls.__module__}:{cls.__qualname__}"
