"""The layering of DESIGN.md: contracts never import mock_server; the engine never imports HTTP."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOCK_SERVER = ROOT / "mock_server"
HTTP_FRAMEWORKS = ("fastapi", "starlette")
# Plain-Python layers: the engine, storage and the (future) result engines.
PLAIN_PYTHON = (MOCK_SERVER / "engine", MOCK_SERVER / "storage.py", MOCK_SERVER / "engines")


def test_importing_contracts_does_not_import_mock_server() -> None:
    code = (
        "import contracts, contracts.openapi, sys; "
        "leaked = sorted(m for m in sys.modules "
        "if m == 'mock_server' or m.startswith('mock_server.')); "
        "assert not leaked, leaked"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def _plain_python_modules() -> list[Path]:
    files: list[Path] = []
    for place in PLAIN_PYTHON:
        if place.is_dir():
            files += sorted(place.rglob("*.py"))
        elif place.is_file():
            files.append(place)
    return files


def _imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_engine_package_exists() -> None:
    """Guards the scan below against passing vacuously."""
    engine = MOCK_SERVER / "engine"
    assert engine.is_dir(), f"{engine} is missing"
    modules = [p for p in engine.glob("*.py") if p.name != "__init__.py"]
    assert modules, f"{engine} holds no modules"


@pytest.mark.parametrize("source", _plain_python_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plain_python_layers_do_not_import_http_frameworks(source: Path) -> None:
    offending = sorted(
        name for name in _imported_modules(source) if name.split(".")[0] in HTTP_FRAMEWORKS
    )
    assert not offending, (
        f"{source.relative_to(ROOT)} imports {offending}: the engine, storage and engines stay "
        "free of FastAPI/Starlette; move HTTP concerns to mock_server/http or mock_server/routes."
    )


def test_the_engine_loads_without_the_web_stack() -> None:
    code = (
        "import sys, mock_server.engine; "
        "assert 'fastapi' not in sys.modules and 'starlette' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_facade_exports_what_it_lists() -> None:
    import mock_server

    for name in mock_server.__all__:
        assert getattr(mock_server, name) is not None
