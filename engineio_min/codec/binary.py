"""Socket.IO binary attachments: swap binary values for placeholders and back.

Layer: codec (pure; no I/O, no asyncio, no logging, no clock). Imports only the
standard library and ``engineio_min.errors``.

SPEC §3.5: walking the data depth-first (lists in order, dict values in key
order), each binary value is replaced by ``{"_placeholder":true,"num":n}``
with ``n`` counting from 0, and the binaries travel as separate Engine.IO
binary messages in that order. Decoding swaps them back.
"""

from __future__ import annotations

from typing import Any, Final

from engineio_min.errors import DecodeError

__all__ = ["PLACEHOLDER_KEY", "deconstruct", "has_binary", "reconstruct"]

PLACEHOLDER_KEY: Final = "_placeholder"
_NUM_KEY: Final = "num"

_BINARY_TYPES: Final = (bytes, bytearray, memoryview)
_SEQUENCE_TYPES: Final = (list, tuple)
# Exact types that can never hold binary; checked by identity first because
# the data is mostly made of them (STYLE §8: cheap common case).
_SCALAR_TYPES: Final = frozenset({str, int, float, bool, type(None)})


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Replace every binary value in ``data`` with a placeholder.

    Containers on the path to a binary value are copied (lists and tuples
    become lists); ``data`` itself is never modified.

    Returns:
        ``(data_with_placeholders, attachments)``. With no binary anywhere,
        this is ``(data, [])`` with ``data`` the very same object, so the
        check costs one walk and no allocation.
    """
    attachments: list[bytes] = []
    return _deconstruct(data, attachments), attachments


def has_binary(data: Any) -> bool:
    """Whether :func:`deconstruct` would find a binary value in ``data``.

    The same walk without building anything: emitters call it on every event to
    pick the plain-text fast path, so scalars are skipped inline, without a call.
    """
    if isinstance(data, _SEQUENCE_TYPES):
        values: Any = data
    elif isinstance(data, dict):
        values = data.values()
    else:
        return isinstance(data, _BINARY_TYPES)
    for value in values:  # noqa: SIM110 - a loop, not any(): no generator frame per container
        if type(value) not in _SCALAR_TYPES and has_binary(value):
            return True
    return False


def _deconstruct(data: Any, attachments: list[bytes]) -> Any:
    # Scalars inside containers are skipped inline, without a call: this walk
    # runs on every encode_sio() and the data is mostly strings and numbers.
    if isinstance(data, _SEQUENCE_TYPES):
        new_list: list[Any] | None = None
        for index, item in enumerate(data):
            if type(item) in _SCALAR_TYPES:
                new_item = item
            else:
                new_item = _deconstruct(item, attachments)
                if new_list is None and new_item is not item:
                    # First change: copy what came before, then keep appending.
                    new_list = list(data[:index])
            if new_list is not None:
                new_list.append(new_item)
        return data if new_list is None else new_list
    if isinstance(data, dict):
        new_dict: dict[Any, Any] | None = None
        for key, value in data.items():
            if type(value) in _SCALAR_TYPES:
                continue
            new_value = _deconstruct(value, attachments)
            if new_value is not value:
                if new_dict is None:
                    new_dict = dict(data)
                new_dict[key] = new_value
        return data if new_dict is None else new_dict
    if isinstance(data, _BINARY_TYPES):
        placeholder = {PLACEHOLDER_KEY: True, _NUM_KEY: len(attachments)}
        attachments.append(bytes(data))
        return placeholder
    # Scalars and anything else (enums, ...) are left to the JSON encoder.
    return data


def _resolve(placeholder: dict[Any, Any], attachments: list[bytes], used: list[bool]) -> bytes:
    num = placeholder.get(_NUM_KEY)
    # type() rather than isinstance(): JSON true must not count as 1.
    if type(num) is not int or not 0 <= num < len(attachments):
        raise DecodeError(f"invalid attachment placeholder num {num!r}")
    used[num] = True
    return attachments[num]


def _is_placeholder(value: Any) -> bool:
    # Only an object whose "_placeholder" is exactly true is a placeholder,
    # as in the reference parser; {"_placeholder": 1} is ordinary data.
    return type(value) is dict and value.get(PLACEHOLDER_KEY) is True


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """Replace the placeholders in freshly decoded JSON with ``attachments``.

    ``data`` must be the output of the JSON decoder (only ``list``, ``dict``
    and scalars); its containers are modified in place. The walk uses an
    explicit stack, so deep peer-controlled nesting cannot raise
    RecursionError.

    Returns:
        ``data`` with the placeholders replaced.

    Raises:
        DecodeError: a placeholder ``num`` is missing, not an integer or out
            of range, or an attachment is not referenced by any placeholder.
    """
    used = [False] * len(attachments)
    if _is_placeholder(data):
        data = _resolve(data, attachments, used)
    elif type(data) is list or type(data) is dict:
        stack: list[Any] = [data]
        while stack:
            node = stack.pop()
            items = enumerate(node) if type(node) is list else node.items()
            for key, value in items:
                kind = type(value)
                if kind is dict:
                    if value.get(PLACEHOLDER_KEY) is True:
                        # Replacing values (never adding keys or items) is safe
                        # while iterating.
                        node[key] = _resolve(value, attachments, used)
                    else:
                        stack.append(value)
                elif kind is list:
                    stack.append(value)
    if not all(used):
        raise DecodeError("binary attachment not referenced by any placeholder")
    return data
