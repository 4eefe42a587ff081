"""The codec stays pure: no I/O, event loop, clock or logging imports (STYLE §1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engineio_min.codec

CODEC_DIR = Path(engineio_min.codec.__file__).parent
MODULES = sorted(CODEC_DIR.glob("*.py"))

FORBIDDEN = {"asyncio", "websockets", "socket", "time", "logging", "selectors", "threading", "uvloop"}
# Inside the package, the codec may import only itself and the error tree.
ALLOWED_INTERNAL = ("engineio_min.codec", "engineio_min.errors")


def _imported_modules(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports"
            assert node.module is not None
            names.append(node.module)
    return names


def test_modules_found() -> None:
    assert {path.name for path in MODULES} >= {
        "__init__.py",
        "json.py",
        "eio.py",
        "payload.py",
        "handshake.py",
        "sio.py",
        "binary.py",
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_forbidden_imports(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for name in _imported_modules(tree):
        root = name.split(".")[0]
        assert root not in FORBIDDEN, f"{path.name} imports {name}"
        if root == "engineio_min":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name} (upward)"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_module_header(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstring = ast.get_docstring(tree)
    assert docstring is not None and "Layer: codec" in docstring
    first_import = next(node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    assert isinstance(first_import, ast.ImportFrom)
    assert first_import.module == "__future__"
    assert [alias.name for alias in first_import.names] == ["annotations"]
