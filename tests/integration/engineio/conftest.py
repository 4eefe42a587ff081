"""Fixtures for the engineio_min wire tests: the conformance and interop apps as subprocesses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .eio_testkit import APPS_DIR, AppProcess, ensure_alive


def _run(script: str) -> Iterator[AppProcess]:
    app = AppProcess(APPS_DIR / script)
    error = None
    try:
        app.start()
    except RuntimeError as exc:
        error = str(exc)
    if error is not None:
        app.close()
        pytest.fail(error, pytrace=False)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture(scope="module")
def conformance_app() -> Iterator[AppProcess]:
    """tests/apps/conformance.py, one process per test module."""
    yield from _run("conformance.py")


@pytest.fixture
def port(conformance_app: AppProcess) -> Iterator[int]:
    """The conformance app's port; the test also fails if the app died under it."""
    yield conformance_app.port
    ensure_alive(conformance_app)


@pytest.fixture
def fresh_app() -> Iterator[AppProcess]:
    """A conformance app of the test's own, for tests that try to break it."""
    yield from _run("conformance.py")


@pytest.fixture(scope="module")
def interop_app() -> Iterator[AppProcess]:
    """tests/apps/interop.py (namespaces / and /second), one process per test module."""
    yield from _run("interop.py")
