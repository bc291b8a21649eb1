"""Finding endpoint classes from ``FILE.py:Class`` and ``module:Class`` references."""

from __future__ import annotations

import colorsys
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuserve import Endpoint
from gpuserve.errors import EndpointLoadError
from gpuserve.loader import load_endpoint, reference_of

ENDPOINT_SOURCE = """
import gpuserve


class Hello(gpuserve.Endpoint):
    def predict(self, name: str) -> str:
        return "hello " + name


class Holder:
    class Inner(gpuserve.Endpoint):
        def predict(self, name: str) -> str:
            return "inner " + name


class Plain:
    pass


NOT_AN_ENDPOINT = 42
"""


class ModuleLevel(Endpoint):
    def predict(self, text: str) -> str:
        return text


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Undo the loader's changes to sys.path and drop modules imported from ``tmp_path``."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write_module(directory: Path, source: str = ENDPOINT_SOURCE, stem: str | None = None) -> Path:
    """Write ``source`` to a Python file whose name no other test uses, and return its path."""
    path = directory / f"{stem or 'endpoint_' + uuid.uuid4().hex[:8]}.py"
    path.write_text(source)
    return path


def test_load_file(tmp_path: Path) -> None:
    path = write_module(tmp_path)

    endpoint = load_endpoint(f"{path}:Hello")

    assert endpoint.__name__ == "Hello"
    assert issubclass(endpoint, Endpoint)
    assert endpoint().predict(name="you") == "hello you"


def test_load_relative_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_module(tmp_path)
    monkeypatch.chdir(tmp_path)

    assert load_endpoint(f"{path.name}:Hello").__name__ == "Hello"


def test_load_file_twice_same_class(tmp_path: Path) -> None:
    path = write_module(tmp_path)

    assert load_endpoint(f"{path}:Hello") is load_endpoint(f"{path}:Hello")


def test_load_nested_class(tmp_path: Path) -> None:
    path = write_module(tmp_path)

    assert load_endpoint(f"{path}:Holder.Inner").__qualname__ == "Holder.Inner"


def test_load_file_neighbour_import(tmp_path: Path) -> None:
    (tmp_path / "helper_words.py").write_text("GREETING = 'hi'\n")
    path = write_module(
        tmp_path,
        "import gpuserve\nfrom helper_words import GREETING\n\n\n"
        "class Greet(gpuserve.Endpoint):\n    def predict(self) -> str:\n        return GREETING\n",
    )

    assert load_endpoint(f"{path}:Greet")().predict() == "hi"


def test_load_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    endpoint = load_endpoint(f"{path.stem}:Hello")

    assert endpoint.__name__ == "Hello"
    assert endpoint.__module__ == path.stem


def test_load_package_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / f"pkg_{uuid.uuid4().hex[:8]}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_module(package, stem="serve")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert load_endpoint(f"{package.name}.serve:Hello").__name__ == "Hello"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.py"

    with pytest.raises(EndpointLoadError) as caught:
        load_endpoint(f"{missing}:Hello")

    assert f"File '{missing}' not found" in str(caught.value)


def test_missing_module() -> None:
    with pytest.raises(EndpointLoadError) as caught:
        load_endpoint("no_such_module_gpuserve.serve:Hello")

    assert "Module 'no_such_module_gpuserve.serve' not found" in str(caught.value)
    assert "no_such_module_gpuserve/serve.py:ClassName" in str(caught.value)


def test_missing_dependency_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_module(tmp_path, "import no_such_dependency_gpuserve\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(
        EndpointLoadError, match="failed with ModuleNotFoundError.*no_such_dependency_gpuserve"
    ) as caught:
        load_endpoint(f"{path.stem}:Hello")
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert caught.value.traceback is not None and "import no_such_dependency_gpuserve" in caught.value.traceback


def test_missing_class(tmp_path: Path) -> None:
    path = write_module(tmp_path)

    with pytest.raises(EndpointLoadError) as caught:
        load_endpoint(f"{path}:Goodbye")

    assert "has no attribute 'Goodbye'" in str(caught.value)


def test_attribute_not_endpoint(tmp_path: Path) -> None:
    path = write_module(tmp_path)

    with pytest.raises(EndpointLoadError) as caught:
        load_endpoint(f"{path}:NOT_AN_ENDPOINT")

    assert "is 42" in str(caught.value)
    assert "not a subclass of gpuserve.Endpoint" in str(caught.value)


def test_plain_class_not_endpoint(tmp_path: Path) -> None:
    path = write_module(tmp_path)

    with pytest.raises(EndpointLoadError, match="not a subclass of gpuserve.Endpoint"):
        load_endpoint(f"{path}:Plain")


@pytest.mark.parametrize("reference", ["tiny.py", "", ":Echo", "examples/tiny.py:", "tiny"])
def test_bad_reference(reference: str) -> None:
    with pytest.raises(EndpointLoadError) as caught:
        load_endpoint(reference)

    assert f"Invalid endpoint reference {reference!r}" in str(caught.value)
    assert "MODULE:CLASS" in str(caught.value)


def test_failed_import_leaves_no_module(tmp_path: Path) -> None:
    path = write_module(tmp_path, "raise RuntimeError('broken at import')\n")

    with pytest.raises(EndpointLoadError, match="failed with RuntimeError: broken at import"):
        load_endpoint(f"{path}:Hello")

    assert path.stem not in sys.modules


def test_file_keeps_stdlib_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "colorsys", colorsys)
    path = write_module(tmp_path, stem="colorsys")

    with pytest.raises(EndpointLoadError, match="rename the file"):
        load_endpoint(f"{path}:Hello")

    assert sys.modules["colorsys"] is colorsys


def test_reference_of_module_class() -> None:
    assert reference_of(ModuleLevel) == f"{__name__}:ModuleLevel"


def test_reference_of_loaded_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    endpoint = load_endpoint(f"{path.stem}:Holder.Inner")

    reference = reference_of(endpoint)

    assert reference == f"{path.stem}:Holder.Inner"
    assert load_endpoint(reference) is endpoint


def test_reference_of_loaded_file(tmp_path: Path) -> None:
    path = write_module(tmp_path)
    endpoint = load_endpoint(f"{path}:Hello")

    assert load_endpoint(reference_of(endpoint)) is endpoint


def test_reference_of_local_class() -> None:
    class Local(Endpoint):
        def predict(self, text: str) -> str:
            return text

    with pytest.raises(EndpointLoadError) as caught:
        reference_of(Local)

    assert "inside a function" in str(caught.value)
    assert "module level" in str(caught.value)


@pytest.mark.parametrize("reference", ["./echo:Echo", "app/echo:Echo", "../echo:Echo"])
def test_path_without_py_suffix(reference: str) -> None:
    with pytest.raises(EndpointLoadError, match=r"\.py:Echo for a file"):
        load_endpoint(reference)
