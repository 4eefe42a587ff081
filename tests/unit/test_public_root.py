"""The public root matches docs/design/server-api.md: what it lists, and Server's documented options."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import engineio_min
from engineio_min import Server

DOC = (Path(__file__).resolve().parents[2] / "docs" / "design" / "server-api.md").read_text(encoding="utf-8")


def _documented_root() -> set[str]:
    # The first paragraph names the root: "`engineio_min.__all__` is exactly `A`, `B`, ... (".
    sentence = DOC.split("is exactly", 1)[1].split("(", 1)[0]
    return set(re.findall(r"`([A-Za-z_]+)`", sentence))


def test_all_is_what_the_doc_documents() -> None:
    assert set(engineio_min.__all__) == _documented_root()
    assert len(engineio_min.__all__) == len(set(engineio_min.__all__))
    for name in engineio_min.__all__:
        assert getattr(engineio_min, name) is not None


def test_plumbing_is_out_of_the_root_but_importable() -> None:
    from engineio_min.engine import EngineHandler, EngineOptions, EngineSession
    from engineio_min.errors import DecodeError, EngineIOError, HandshakeError, PayloadTooLarge

    for plumbing in (EngineHandler, EngineOptions, EngineSession, DecodeError, EngineIOError, HandshakeError,
                     PayloadTooLarge):  # fmt: skip
        assert plumbing.__name__ not in engineio_min.__all__
        assert not hasattr(engineio_min, plumbing.__name__)


def test_server_options_are_the_documented_ones() -> None:
    block = DOC.split("server = Server(", 1)[1].split("\n)", 1)[0]
    documented = set(re.findall(r"^\s+([a-z_]+)=", block, re.MULTILINE)) | {"path"}
    parameters = set(inspect.signature(Server.__init__).parameters) - {"self"}
    assert documented == parameters
