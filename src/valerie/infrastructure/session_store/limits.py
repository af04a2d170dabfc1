"""Size limits: refuse an oversized state before anything is written, naming what to trim."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError, StateTooLargeError

MAX_BYTES_VAR = "VALERIE_SESSION_MAX_BYTES"
"""The largest encoded state a store accepts, in bytes; unset means no limit."""

_SHOWN = 3  # parts named in the message


def check_max_state_bytes(value: object, name: str = "max_state_bytes") -> int | None:
    """Return `value` as a limit in bytes (`None`: no limit).

    Raises:
        ConfigurationError: `value` is not a positive `int` or `None`.
    """
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive number of bytes or None, got "
            f"{type(value).__name__ if type(value) is not int else value}; "
            "pass e.g. max_state_bytes=1_000_000"
        )
    return value


def max_state_bytes_from_environ(environ: Mapping[str, str] | None = None) -> int | None:
    """Return the limit `VALERIE_SESSION_MAX_BYTES` sets, or `None` if it is unset.

    Raises:
        ConfigurationError: The value is not whole positive ASCII digits.
    """
    text = (os.environ if environ is None else environ).get(MAX_BYTES_VAR)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ConfigurationError(
            f"{MAX_BYTES_VAR} must be a positive whole number of bytes in ASCII digits, "
            f"got {text!r}; e.g. {MAX_BYTES_VAR}=1000000, or unset it for no limit"
        )
    return int(text)


def check_state_size(data: bytes, state: Mapping[str, Any], limit: int | None) -> None:
    """Raise if `data`, the encoded `state`, is over `limit` bytes.

    Raises:
        StateTooLargeError: Over the limit; the message names the largest parts of the state.
    """
    if limit is None or len(data) <= limit:
        return
    largest = largest_parts(state)
    parts = ", ".join(f"{path} is {_size(size)}" for path, size in largest[:_SHOWN])
    raise StateTooLargeError(
        f"the state is {len(data):,} bytes encoded, over max_state_bytes ({limit:,}); "
        f"the largest parts: {parts or 'none (the state is empty)'}; nothing was written. "
        "Trim them (e.g. keep only the last messages of a history) or raise max_state_bytes",
        size=len(data),
        limit=limit,
        largest=largest,
    )


def largest_parts(state: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Return the state's parts by their JSON size, largest first.

    The top-level values, and within the largest one (while it is a container) its own largest
    item, so that `state['history'][17]` is named when one message is the problem.
    """
    parts = [(f"state[{key!r}]", _json_size(value), value) for key, value in state.items()]
    parts.sort(key=lambda part: part[1], reverse=True)
    sizes = [(path, size) for path, size, _ in parts]
    if parts:
        inner = _largest_item(parts[0][0], parts[0][2])
        if inner is not None:
            sizes.insert(1, inner)
    return sizes


def _largest_item(path: str, value: object) -> tuple[str, int] | None:
    items: list[tuple[str, object]]
    if isinstance(value, Mapping):
        items = [(f"{path}[{key!r}]", item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        return None
    if len(items) < 2:
        return None
    return max(((where, _json_size(item)) for where, item in items), key=lambda part: part[1])


def _json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _size(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    if count >= 1_000:
        return f"{count / 1_000:.1f} kB"
    return f"{count} bytes"
