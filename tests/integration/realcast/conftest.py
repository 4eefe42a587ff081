"""Fixtures for realcast integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import Harness


@pytest.fixture
async def rc(tmp_path: Path) -> AsyncIterator[Harness]:
    """A realcast server on 127.0.0.1, an ephemeral port, state in a temporary directory."""
    harness = Harness(tmp_path / "data")
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
