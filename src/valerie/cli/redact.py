"""`get --redact PATH`: hide personal or secret fields of a state before it is shown."""

from __future__ import annotations

from typing import Any

REDACTED = "***"


def parse_path(text: str) -> tuple[str, ...]:
    """Split `user.email` or `history.*.content` into its steps.

    A step is an object key, a list index (digits) or `*` (every key or item).

    Raises:
        ValueError: The path is empty or has an empty step.
    """
    steps = tuple(text.split("."))
    if not text or any(step == "" for step in steps):
        raise ValueError(
            f"{text!r} is not a path: give keys separated by dots, e.g. user.email or "
            "history.*.content (* is every key or item)"
        )
    return steps


def redact(value: Any, path: tuple[str, ...]) -> Any:
    """Return `value` with what `path` reaches replaced by `***` (`value` is not changed).

    A path that reaches nothing changes nothing.
    """
    if not path:
        return REDACTED
    step, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {
            key: redact(item, rest) if step in ("*", key) else item for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            redact(item, rest) if step == "*" or step == str(index) else item
            for index, item in enumerate(value)
        ]
    return value
