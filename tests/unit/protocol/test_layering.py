"""The protocol layer stays sans-I/O: no event loop, sockets, clock, threads or logging.

The time comes in as an argument; bytes and packets go in and out. What the machines may
import inside the package: the codec, the error tree and themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import engineio_min.protocol

PROTOCOL_DIR = Path(engineio_min.protocol.__file__).parent
MODULES = sorted(PROTOCOL_DIR.glob("*.py"))

FORBIDDEN = {"asyncio", "websockets", "socket", "time", "logging", "selectors", "threading", "uvloop", "contextvars"}
ALLOWED_INTERNAL = ("engineio_min.codec", "engineio_min.errors", "engineio_min.protocol")


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import: resolve it against the package
                base = "engineio_min.protocol" if node.level == 1 else "engineio_min"
                names.append(f"{base}.{node.module}" if node.module else base)
            else:
                assert node.module is not None
                names.append(node.module)
    return names


def test_modules_found() -> None:
    assert {path.name for path in MODULES} >= {"__init__.py", "reasons.py", "engine.py", "socketio.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_io_imports(path: Path) -> None:
    for name in _imported_modules(path):
        root = name.split(".")[0]
        assert root not in FORBIDDEN, f"{path.name} imports {name}"
        if root == "engineio_min":
            assert name.startswith(ALLOWED_INTERNAL), f"{path.name} imports {name} (upward)"


def _module_path(name: str) -> Path | None:
    """The file of an engineio_min module (a package's __init__.py), None for a name inside one."""
    root = PROTOCOL_DIR.parent
    parts = name.split(".")[1:]
    candidate = root.joinpath(*parts)
    if candidate.is_dir():
        return candidate / "__init__.py"
    module = candidate.with_suffix(".py")
    return module if module.exists() else None


def test_nothing_it_imports_reaches_io() -> None:
    # Follow the imports transitively inside the package (the codec, the error tree): none of
    # them may pull asyncio & co. in either. (The package root's __init__ imports the server,
    # as any package's does; what matters is what the protocol modules themselves need.)
    seen: set[Path] = set()
    todo = list(MODULES)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_modules(path):
            root = name.split(".")[0]
            assert root not in FORBIDDEN, f"{path} (reached from the protocol layer) imports {name}"
            if root == "engineio_min":
                module = _module_path(name)
                if module is None:  # "from engineio_min.codec import x": x lives in the package
                    module = _module_path(name.rsplit(".", 1)[0])
                if module is not None and module != PROTOCOL_DIR.parent / "__init__.py":
                    todo.append(module)
    assert any("codec" in str(path) for path in seen) or len(seen) == len(MODULES)
